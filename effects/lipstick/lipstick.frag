// Lipstick: lip colour in five finishes and an optional liner, in linear light.
//
// A pixel's luminance divided by the mean luminance of that face's lips (hooks.py) is its
// shading (creases < 1, lit areas > 1); the paint colour times that shading keeps the lips'
// form, and what rises well above the mean is their own specular highlight. The finishes:
//   matte    shading compressed and the lips' highlights flattened: a dry, velvety surface
//   satin    the lips' own shading and highlights plus a faint broad sheen
//   gloss    a wet coat: deeper colour, brighter highlights and a specular highlight from a
//            model of the lips' shape, lit from where the bare lips are brightest
//   shimmer  satin plus glints of flakes fixed on the lips
//   sheer    a thin tint through which the natural lip colour shows
// The shape model and the flakes live in lip coordinates from the mesh's lip contours: u
// across the mouth (-1 at corner 61, +1 at corner 291), t across each lip (0 where the lips
// meet, 1 at the outer edge), so both move with the lips, not with the screen.
// Coverage is multiplied by the inner mouth, (with the face model) occlusion and hands
// masks: no paint on teeth, tongue or a hand in front of the mouth.
//
// The code runs straight through, with no early return: a software renderer (llvmpipe,
// as in tests and CI) runs every branch for every pixel of the frame anyway, so whatever is
// the same for a whole face is computed once in hooks.py and the per-pixel work kept small.

#include "color.glsl"
#include "mask.glsl"
#include "noise.glsl"

// Contour samples per face: 17 keep all uniforms within the 1024 components GL 3.3
// guarantees a fragment shader. Must equal LIP_SAMPLES in hooks.py.
#define LIP_SAMPLES 17

uniform vec3 u_color;        // sRGB
uniform float u_opacity;
uniform float u_feather;
uniform int u_finish;        // index into the manifest's choices: MATTE, SATIN...
uniform float u_gloss;
uniform float u_shimmer;
uniform vec3 u_shimmer_color;
uniform vec3 u_liner_color;
uniform float u_liner_width; // % of the mouth width
uniform sampler2D u_mask_lips;
uniform sampler2D u_mask_inner_mouth;        // teeth, tongue (both mask sources have it)
uniform sampler2D u_mask_occlusion;          // all zero without the face model
uniform sampler2D u_mask_hands;              // fingers (hand tracker); zero when off
// Per face, from hooks.py:
uniform float u_lip_luma[ARFX_MAX_FACES];    // mean linear luminance of the lips
uniform float u_lip_peak[ARFX_MAX_FACES];    // their 99th-percentile linear luminance
uniform float u_mouth_width[ARFX_MAX_FACES]; // pixels, corner to corner
uniform vec4 u_lip_box[ARFX_MAX_FACES];      // x0, y0, x1, y1: nothing is drawn outside
uniform vec4 u_mouth[ARFX_MAX_FACES];        // mouth centre (px) and unit axis toward 291
uniform vec3 u_half_vector[ARFX_MAX_FACES];  // lip normal that mirrors the light to the camera
uniform vec2 u_turn[ARFX_MAX_FACES];         // x, y of the head's forward axis in the camera
// y (in half mouth widths, along the mouth's down axis) of the outer upper, outer lower,
// inner upper and inner lower lip contours at u = -1 + 2 i / (LIP_SAMPLES - 1).
uniform vec4 u_lip_rows[ARFX_MAX_FACES * LIP_SAMPLES];

const int MATTE = 0, SATIN = 1, GLOSS = 2, SHIMMER = 3, SHEER = 4;
const float HIGHLIGHT_KNEE = 1.3;
const float SHEER_OPACITY = 0.5;
const float FLAKES_PER_HALF_MOUTH = 24.0;    // flake cells from the centre to a corner
const float MIN_FLAKE_SIGMA = 0.7;           // pixels
const float FLAKE_TILT = 0.5;                // how far flakes tilt from the lip surface

struct LipPoint {
    vec2 q;        // mouth coordinates: x = u, y down, in half mouth widths
    float t;       // across the lip: 0 where the lips meet, 1 at the outer edge
    bool upper;
    float middle;  // y of the lip's middle line at u
};

LipPoint lip_point(int face, vec2 px) {
    vec4 frame = u_mouth[face];
    vec2 d = (px - frame.xy) / max(0.5 * u_mouth_width[face], 1.0);
    LipPoint p;
    p.q = vec2(dot(d, frame.zw), dot(d, vec2(-frame.w, frame.z)));
    float f = clamp((p.q.x + 1.0) * 0.5 * float(LIP_SAMPLES - 1), 0.0, float(LIP_SAMPLES - 1));
    int i = min(int(f), LIP_SAMPLES - 2);
    int row = face * LIP_SAMPLES + i;
    vec4 y = mix(u_lip_rows[row], u_lip_rows[row + 1], f - float(i));
    p.upper = p.q.y < 0.5 * (y.z + y.w);
    float inner = p.upper ? y.z : y.w;
    float outer = p.upper ? y.x : y.y;
    p.t = (p.upper ? inner - p.q.y : p.q.y - inner) / max(abs(outer - inner), 0.02);
    p.middle = 0.5 * (inner + outer);
    return p;
}

// Surface normal of a lip (x right, y down, z toward the camera): each lip a rounded
// cushion, the lower one facing up where the lips meet and down at its outer edge, the upper
// one the other way round and tipped down; both wrap round the teeth toward the corners.
// hooks.py mirrors this to aim the light.
vec3 lip_normal(float u, float t, bool upper) {
    float tilt = upper ? mix(0.9, -0.6, t) : mix(-0.8, 1.1, t);
    float turn = 1.1 * asin(clamp(u, -0.95, 0.95));
    return normalize(vec3(tan(turn), tan(clamp(tilt, -1.3, 1.3)), 1.0));
}

// Linear luminance of the source around px: four bilinear taps at pixel corners `radius`
// pixels away diagonally, each already the mean of 2x2 pixels (averaged in sRGB, converted
// once: close enough for a light level, and cheap).
float ring_luma(vec2 px, float radius) {
    vec2 r = vec2(floor(radius) + 0.5);
    vec3 total = texture(u_frame, (px + r) / u_resolution).rgb;
    total += texture(u_frame, (px - r) / u_resolution).rgb;
    total += texture(u_frame, (px + vec2(r.x, -r.y)) / u_resolution).rgb;
    total += texture(u_frame, (px + vec2(-r.x, r.y)) / u_resolution).rgb;
    return luminance(srgb_to_linear(0.25 * total));
}

// The lips mask averaged over the centre and 8 points on a circle of `radius` pixels: a
// cheaper arfx_mask_soft for the liner, which only needs where the edge is.
float ring_mask(vec2 px, float radius) {
    float total = 2.0 * arfx_mask(u_mask_lips, px);
    for (int i = 0; i < 8; ++i) {
        float a = float(i) * 0.78539816 + 0.3927;
        total += arfx_mask(u_mask_lips, px + radius * vec2(cos(a), sin(a)));
    }
    return total / 10.0;
}

// Glints of flakes scattered in lip coordinates p (cells of cell_px pixels, at most one
// flake each). Each flake is a tiny mirror tilted its own way from the lip's `normal`; it
// glints when it faces `half_vector`, so glints gather where the light falls and change as
// the head turns, but never move on the lips. A flake is a Gaussian spot of `radius` cells,
// never under MIN_FLAKE_SIGMA pixels (dimmer when widened, same total light), so one smaller
// than a pixel does not flicker as it moves across pixel centres. Only the 2x2 cells nearest
// p are looked at: on mouths under ~100 px wide the widest spots are cut a little short.
float flakes(vec2 p, float density, float radius, float cell_px, vec3 normal, vec3 half_vector) {
    float sigma = max(0.5 * radius * cell_px, MIN_FLAKE_SIGMA);  // pixels
    float amplitude = min(0.25 * radius * radius * cell_px * cell_px / (sigma * sigma), 1.0);
    ivec2 cell = ivec2(floor(p - 0.5));
    float glint = 0.0;
    for (int y = 0; y <= 1; ++y) {
        for (int x = 0; x <= 1; ++x) {
            ivec2 c = cell + ivec2(x, y);
            float d = length(p - (vec2(c) + arfx_hash2(c))) * cell_px / sigma;
            vec2 tilt = FLAKE_TILT * (2.0 * arfx_hash2(c + ivec2(577, 331)) - 1.0);
            float facing = max(dot(normalize(normal + vec3(tilt, 0.0)), half_vector), 0.0);
            float present = step(arfx_hash(c + ivec2(7919, 104729)), density);
            float spot = amplitude * exp(-0.5 * d * d) * (0.1 + 0.9 * pow(facing, 24.0));
            glint = max(glint, present * spot);
        }
    }
    return glint;
}

// The face whose lip box holds px, or -1.
int lip_face(vec2 px) {
    int found = -1;
    for (int i = ARFX_FACE_COUNT - 1; i >= 0; --i) {
        vec4 b = u_lip_box[i];
        if (all(greaterThanEqual(px, b.xy)) && all(lessThanEqual(px, b.zw))) found = i;
    }
    return found;
}

void main() {
    vec4 src = arfx_source();
    vec2 px = arfx_pixel();
    int found = lip_face(px);
    int face = max(found, 0);
    float width = u_mouth_width[face];
    float feather_px = u_feather * 0.06 * width;

    // No paint on teeth, tongue or whatever the face model sees in front of the mouth.
    float occluder = smoothstep(0.15, 0.5, arfx_mask_here(u_mask_occlusion));
    occluder = max(occluder, smoothstep(0.25, 0.75, arfx_mask_here(u_mask_hands)));
    float mouth = smoothstep(0.3, 0.7, arfx_mask_here(u_mask_inner_mouth));
    float visible = (1.0 - mouth) * (1.0 - occluder);
    visible *= float(found >= 0);
    // Feathered inward only: paint does not spread past where the mask says lips, which
    // also keeps it off the edge of a finger the model's soft lips mask reaches onto.
    float coverage = arfx_mask_soft(u_mask_lips, px, feather_px);
    coverage *= smoothstep(0.1, 0.5, arfx_mask_here(u_mask_lips));
    float opacity = u_finish == SHEER ? SHEER_OPACITY * u_opacity : u_opacity;
    float weight = clamp(opacity * coverage * visible, 0.0, 1.0);

    LipPoint lip = lip_point(face, px);

    // The liner: a band a liner width wide on the lips' outer edge (not the one at the
    // teeth), half on the skin, softened a little with the feather.
    float liner = 0.0;
    if (u_liner_width > 0.0) {
        float edge = ring_mask(px, u_liner_width * 0.01 * width + 0.15 * feather_px);
        liner = smoothstep(0.05, 0.95, 1.0 - abs(2.0 * edge - 1.0)) * visible;
        liner *= smoothstep(0.4, 0.7, lip.t);
    }

    vec3 lips = srgb_to_linear(src.rgb);
    float y = luminance(lips);
    float reference = max(u_lip_luma[face], 1e-4);
    float local = max(ring_luma(px, max(1.0, 0.03 * width)), 1e-5);  // the light here
    float smooth_y = ring_luma(px, 0.0);                            // y without JPEG noise
    float detail = y / local;                   // fine texture: lip lines < 1, glints > 1
    float shading = min(y / reference, HIGHLIGHT_KNEE);
    float highlight = max(y - HIGHLIGHT_KNEE * reference, 0.0);
    // How bright a highlight gets in this light: a few times the lips' mean, at most white.
    float peak = clamp(max(2.0 * u_lip_peak[face], 6.0 * reference), 0.04, 0.9);
    vec3 color = srgb_to_linear(u_color);

    // Shine from the lip shape: how squarely this point mirrors the light into the camera.
    vec3 normal = lip_normal(lip.q.x, lip.t, lip.upper);
    vec3 half_vector = u_half_vector[face];
    float facing = max(dot(normal, half_vector), 0.0);
    float grain = clamp(pow(smooth_y / local, 2.0), 0.2, 1.6);  // creases break a highlight

    vec3 paint;
    if (u_finish == MATTE) {
        float form = pow(min(local / reference, 1.6), 0.75);
        paint = color * min(form, 1.12) * pow(min(detail, 1.0), 0.8);
    } else if (u_finish == GLOSS) {
        // The upper lip, tipped down and shaded by the nose, catches less of the light.
        float spec = (pow(facing, 24.0) + 0.15 * pow(facing, 6.0)) * (lip.upper ? 0.5 : 1.0);
        float wet = max(smooth_y - HIGHLIGHT_KNEE * reference, 0.0) * 2.5 * u_gloss;
        paint = color * 0.9 * pow(shading, 1.15) + highlight + wet;
        paint += vec3(u_gloss * peak * spec * grain);
    } else {
        float sheen = u_finish == SHEER ? 0.3 : 0.04;
        paint = color * shading + highlight;
        paint += vec3(sheen * u_gloss * peak * pow(facing, 16.0) * grain);
        if (u_finish == SHEER) {
            // A thin, balm-like coat: the lips' own highlights a little wet.
            paint += max(smooth_y - HIGHLIGHT_KNEE * reference, 0.0) * u_gloss;
        }
    }
    if (u_finish == SHIMMER && u_shimmer > 0.0) {
        // Flake cells in lip coordinates: x along the mouth, y from the lip's middle line.
        vec2 cells = vec2(lip.q.x, lip.q.y - lip.middle) * FLAKES_PER_HALF_MOUTH;
        cells += lip.upper ? vec2(0.0, 1000.0) : vec2(0.0);
        float cell_px = 0.5 * width / FLAKES_PER_HALF_MOUTH;
        // A head turn tilts every flake with it: the light meets them at another angle.
        vec3 flake_light = normalize(half_vector - vec3(0.5 * u_turn[face], 0.0));
        float density = mix(0.2, 0.7, u_shimmer);
        float glint = flakes(cells, density, 0.3, cell_px, normal, flake_light);
        float light = peak * (0.3 + 0.7 * shading) * (0.5 + u_shimmer);
        float inside = smoothstep(0.5, 0.9, coverage);  // no flake glints past the lip edge
        paint += srgb_to_linear(u_shimmer_color) * light * inside * 3.0 * glint;
    }

    vec3 result = mix(lips, paint, weight);
    float liner_shading = clamp(sqrt(y / reference), 0.6, 1.15);
    result = mix(result, srgb_to_linear(u_liner_color) * liner_shading, liner * 0.75);
    // Untouched pixels stay bit-identical.
    arfx_out = weight > 0.0 || liner > 0.0 ? vec4(linear_to_srgb(result), src.a) : src;
}
