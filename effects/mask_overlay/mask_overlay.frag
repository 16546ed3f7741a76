// Shows a mask as a tint, proportional to its soft value, so edges and gaps are visible.

#include "mask.glsl"

uniform int u_mask;          // index into effect.json's choices
uniform vec3 u_color;
uniform float u_opacity;
uniform sampler2D u_mask_hair;
uniform sampler2D u_mask_lips;
uniform sampler2D u_mask_skin;
uniform sampler2D u_mask_occlusion;

void main() {
    vec4 src = arfx_source();
    vec2 px = arfx_pixel();
    float m = u_mask == 0 ? arfx_mask(u_mask_hair, px)
            : u_mask == 1 ? arfx_mask(u_mask_lips, px)
            : u_mask == 2 ? arfx_mask(u_mask_skin, px)
            : arfx_mask(u_mask_occlusion, px);
    float weight = clamp(m * u_opacity, 0.0, 1.0);
    arfx_out = weight > 0.0 ? vec4(mix(src.rgb, u_color, weight), src.a) : src;
}
