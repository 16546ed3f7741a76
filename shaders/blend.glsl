// Blend modes (W3C Compositing and Blending Level 1), per channel, values in [0, 1].
// `base` is the backdrop (the frame), `layer` the colour laid over it; mix the result with
// `base` by the layer's opacity. Like in image editors, they are defined on sRGB-encoded
// values; multiply and screen are also physically meaningful in linear light.

vec3 blend_multiply(vec3 base, vec3 layer) { return base * layer; }

vec3 blend_screen(vec3 base, vec3 layer) { return base + layer - base * layer; }

// Multiply in the shadows, screen in the highlights, chosen by the backdrop.
vec3 blend_overlay(vec3 base, vec3 layer) {
    vec3 low = 2.0 * base * layer;
    vec3 high = 1.0 - 2.0 * (1.0 - base) * (1.0 - layer);
    return mix(high, low, vec3(lessThanEqual(base, vec3(0.5))));
}

// A gentle overlay: darkens or lightens the backdrop depending on the layer.
vec3 blend_soft_light(vec3 base, vec3 layer) {
    vec3 curve = mix(sqrt(base), ((16.0 * base - 12.0) * base + 4.0) * base,
                     vec3(lessThanEqual(base, vec3(0.25))));
    vec3 low = base - (1.0 - 2.0 * layer) * base * (1.0 - base);
    vec3 high = base + (2.0 * layer - 1.0) * (curve - base);
    return mix(high, low, vec3(lessThanEqual(layer, vec3(0.5))));
}
