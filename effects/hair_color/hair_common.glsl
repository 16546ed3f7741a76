// Shared by the hair_color passes: parameters, per-face uniforms from hooks.py, constants.

uniform vec3 u_root_lab;       // the colour (u_color) in CIELAB, from hooks.py
uniform vec3 u_tip_lab;        // the tip colour (u_tip_color) in CIELAB
uniform bool u_maybe_yellow;   // a yellow hue may be dyed: the colour's, or any along the ombré
uniform float u_ombre;
uniform float u_strength;
uniform float u_lift;
uniform float u_shine;
uniform float u_edge;
uniform sampler2D u_mask_hair;
uniform sampler2D u_mask_skin;
uniform vec3 u_hair_levels[ARFX_MAX_FACES]; // each face's hair lightness: 5th, 50th, 95th pct
uniform vec3 u_hair_chroma[ARFX_MAX_FACES]; // ... median a, b, 75th pct distance from them
uniform float u_saturation[ARFX_MAX_FACES];  // the picture's saturation: 1 = ungraded, less if muted
uniform vec4 u_hair_axis[ARFX_MAX_FACES];    // forehead top xy; zw: down axis / face length
uniform vec2 u_hair_span[ARFX_MAX_FACES];    // the hair's crown and ends along that axis
uniform vec3 u_crop_x[ARFX_MAX_FACES];       // frame pixel -> model crop pixel, rows
uniform vec3 u_crop_y[ARFX_MAX_FACES];
uniform float u_crop_pixel[ARFX_MAX_FACES];  // frame pixels per crop pixel

// HAIR_LOW and REACH are also the `cover` values of the two passes in effect.json.
const float HAIR_LOW = 0.4;     // model probability ramp: below = not hair, above HIGH = hair
const float HAIR_HIGH = 0.85;
const float REACH = 0.1;       // below this probability a pixel is left alone
const float SKIN_LOW = 0.5;     // skin probability ramp that takes pixels out of the mask
const float SKIN_HIGH = 0.9;
const float CROP = 256.0;
const float CROP_FADE = 10.0;   // crop pixels over which the mask fades at the crop's edge
const int TAPS = 2;             // guided filter window: (2 TAPS + 1)^2 samples
const float SHADOW_DEPTH = 0.55;     // lightened hair's 5th percentile: this much below the median
const float MAX_STRETCH = 4.0;     // most the shadows' lightness range is stretched by
const float WARM_HUE = 0.95;        // Lab hue angle (radians) of golden brown
const float HIGHLIGHT_HEIGHT = 0.35; // ... its 95th: this part of the way from the median to white

int nearest_face(vec2 px) {
    if (ARFX_FACE_COUNT == 1) return 0;  // a constant: per-face arrays are read once
    int best = -1;
    float best_distance = 1e20;
    for (int i = 0; i < ARFX_FACE_COUNT && i < ARFX_MAX_FACES; ++i) {
        vec4 box = u_face_box[i];
        float size = max(max(box.z - box.x, box.w - box.y), 1.0);
        float d = length(px - 0.5 * (box.xy + box.zw)) / size;
        if (d < best_distance) {
            best_distance = d;
            best = i;
        }
    }
    return best;
}

// 1 well inside some face's model crop, 0 outside all of them.
float crop_fade(vec2 px) {
    float fade = 0.0;
    for (int i = 0; i < ARFX_FACE_COUNT && i < ARFX_MAX_FACES; ++i) {
        vec2 c = vec2(dot(u_crop_x[i], vec3(px, 1.0)), dot(u_crop_y[i], vec3(px, 1.0)));
        float inside = min(min(c.x, c.y), min(CROP - c.x, CROP - c.y));
        fade = max(fade, clamp(inside / CROP_FADE, 0.0, 1.0));
    }
    return fade;
}

vec2 clamp_px(vec2 px) { return clamp(px, vec2(0.5), u_resolution - 0.5); }
