// Lipstick: replace the lips' colour in linear light while keeping their shading.
//
// A pixel's luminance divided by the mean luminance of that face's lips is its shading
// (creases < 1, lit areas > 1). The paint colour is multiplied by that shading; what
// rises well above the mean is treated as a specular highlight and added back white,
// so the result reads as coloured lips, not a flat sticker.

#include "color.glsl"
#include "mask.glsl"

uniform vec3 u_color;        // sRGB
uniform float u_opacity;
uniform float u_feather;
uniform sampler2D u_mask_lips;
uniform float u_lip_luma[ARFX_MAX_FACES];   // mean linear luminance of each face's lips
uniform float u_mouth_width[ARFX_MAX_FACES]; // pixels, scales the feather radius

const float HIGHLIGHT_KNEE = 1.3;

void main() {
    vec4 src = arfx_source();
    arfx_out = src;
    vec2 px = arfx_pixel();
    int face = arfx_face_at(px, 0.05);
    if (face < 0) return;

    float radius = u_feather * 0.06 * u_mouth_width[face];
    float coverage = arfx_mask_soft(u_mask_lips, px, radius);
    float weight = clamp(u_opacity * coverage, 0.0, 1.0);
    if (weight <= 0.0) return;

    vec3 lips = srgb_to_linear(src.rgb);
    float y = luminance(lips);
    float reference = max(u_lip_luma[face], 1e-4);
    float shading = min(y / reference, HIGHLIGHT_KNEE);
    float highlight = max(y - HIGHLIGHT_KNEE * reference, 0.0);
    vec3 paint = srgb_to_linear(u_color) * shading + vec3(highlight);

    arfx_out = vec4(linear_to_srgb(mix(lips, paint, weight)), src.a);
}
