// Eyewear mesh pass, fragment stage: the material's colour (and texture) under the lighting
// the vertex stage computed. Lenses (BLEND) are tinted glass: their colour at the lens
// opacity, plus reflections. Output is premultiplied by alpha.

#include "color.glsl"
#include "mask.glsl"
#include "material.glsl"

// Something in front of the face hides the glasses too: a hand (the hand tracker's
// `hands` mask, sharp at the fingers' edges) or another occluder the face model sees (zero
// on mesh masks, which know no occluders).
uniform sampler2D u_mask_occlusion;
uniform sampler2D u_mask_hands;

in vec2 v_uv;
in vec3 v_diffuse;
in vec3 v_specular;
in float v_fresnel;
flat in vec4 v_base;  // the material's colour, linear (the vertex stage's)

void main() {
    float hidden = max(arfx_mask_here(u_mask_occlusion), arfx_mask_here(u_mask_hands));
    if (hidden > 0.5) discard;
    vec4 base = v_base;
    if (u_has_base_texture) {
        vec4 texel = texture(u_base_texture, v_uv);
        base *= vec4(srgb_to_linear(texel.rgb), texel.a);
    }
    if (u_alpha_mode == 1 && base.a < u_alpha_cutoff) discard;
    vec3 lit = base.rgb * v_diffuse;
    if (u_alpha_mode == 2) {
        // Glass: the tint covers the background at its opacity; reflections add light.
        float alpha = clamp(base.a + 0.5 * v_fresnel * (1.0 - base.a), 0.0, 1.0);
        vec3 color = linear_to_srgb(lit) * alpha + linear_to_srgb(v_specular);
        arfx_out = vec4(min(color, vec3(1.0)), min(alpha + luminance(v_specular), 1.0));
    } else {
        arfx_out = vec4(linear_to_srgb(lit + v_specular), 1.0);
    }
}
