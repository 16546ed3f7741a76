// Deterministic noise: the same input gives the same value on every frame, so noise evaluated
// in face-anchored coordinates (e.g. a pixel's offset from a landmark divided by the face
// size) sticks to the face instead of crawling across it.
//
//   arfx_hash(cell)             uniform value in [0, 1) per integer cell (PCG hash)
//   arfx_hash2(cell)            two independent values in [0, 1)
//   arfx_value_noise(p)         smooth value noise in [0, 1], one lattice cell per unit of p
//   arfx_gradient_noise(p)      gradient (Perlin-style) noise, about [-1, 1]
//   arfx_sparkle(p, density, size)  sparse round glints in [0, 1]: at most one per cell,
//                               present with probability `density`, `size` = radius in cells

// PCG hash (O'Neill): a well-mixed 32-bit permutation.
uint arfx_pcg(uint v) {
    uint state = v * 747796405u + 2891336453u;
    uint word = ((state >> ((state >> 28u) + 4u)) ^ state) * 277803737u;
    return (word >> 22u) ^ word;
}

uint arfx_hash_bits(ivec2 cell) {
    // The offset keeps the int -> uint conversion non-negative for any sane coordinate.
    uvec2 u = uvec2(cell + ivec2(1 << 30));
    return arfx_pcg(u.x ^ arfx_pcg(u.y));
}

float arfx_hash(ivec2 cell) { return float(arfx_hash_bits(cell) >> 8u) / 16777216.0; }

vec2 arfx_hash2(ivec2 cell) {
    uint h = arfx_hash_bits(cell);
    return vec2(float(h >> 8u), float(arfx_pcg(h) >> 8u)) / 16777216.0;
}

float arfx_value_noise(vec2 p) {
    ivec2 i = ivec2(floor(p));
    vec2 f = fract(p);
    vec2 u = f * f * (3.0 - 2.0 * f);
    float a = arfx_hash(i);
    float b = arfx_hash(i + ivec2(1, 0));
    float c = arfx_hash(i + ivec2(0, 1));
    float d = arfx_hash(i + ivec2(1, 1));
    return mix(mix(a, b, u.x), mix(c, d, u.x), u.y);
}

vec2 arfx_gradient(ivec2 cell) {
    float angle = 6.28318531 * arfx_hash(cell);
    return vec2(cos(angle), sin(angle));
}

float arfx_gradient_noise(vec2 p) {
    ivec2 i = ivec2(floor(p));
    vec2 f = fract(p);
    vec2 u = f * f * f * (f * (f * 6.0 - 15.0) + 10.0);
    float a = dot(arfx_gradient(i), f);
    float b = dot(arfx_gradient(i + ivec2(1, 0)), f - vec2(1.0, 0.0));
    float c = dot(arfx_gradient(i + ivec2(0, 1)), f - vec2(0.0, 1.0));
    float d = dot(arfx_gradient(i + ivec2(1, 1)), f - vec2(1.0, 1.0));
    return 1.41421356 * mix(mix(a, b, u.x), mix(c, d, u.x), u.y);
}

float arfx_sparkle(vec2 p, float density, float size) {
    ivec2 cell = ivec2(floor(p));
    float glint = 0.0;
    for (int y = -1; y <= 1; ++y) {
        for (int x = -1; x <= 1; ++x) {
            ivec2 c = cell + ivec2(x, y);
            if (arfx_hash(c + ivec2(7919, 104729)) >= density) continue;
            vec2 centre = vec2(c) + arfx_hash2(c);
            float d = length(p - centre) / max(size, 1e-4);
            glint = max(glint, clamp(1.0 - d, 0.0, 1.0));
        }
    }
    return glint * glint;
}
