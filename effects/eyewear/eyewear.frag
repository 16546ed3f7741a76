// Eyewear mesh pass, fragment stage: a simple studio lighting of the glTF material.
//
// Lights live in the camera frame (x right, y down, z away from the camera): a key light from
// the upper left, a softer fill from the right, and a sky/floor ambient. Metals reflect a
// fake studio environment. Lenses (role 2) are tinted glass: their colour at the lens
// opacity, plus a Fresnel reflection and highlights. Output is premultiplied by alpha.

#include "color.glsl"

uniform vec3 u_frame_color;                 // sRGB
uniform vec3 u_lens_color;                  // sRGB
uniform float u_lens_opacity;
uniform int u_material_role[32];            // per material: 0 as in the file, 1 frame, 2 lens

in vec3 v_camera;
in vec3 v_normal;
in vec2 v_uv;

const vec3 KEY_DIRECTION = vec3(-0.45, -0.65, -0.62);  // toward the key light
const vec3 FILL_DIRECTION = vec3(0.7, -0.2, -0.68);

float specular(vec3 n, vec3 v, vec3 l, float shininess) {
    vec3 h = normalize(l + v);
    return pow(max(dot(n, h), 0.0), shininess) * (shininess + 8.0) / 25.0;
}

vec3 environment(vec3 r) {
    // A studio: bright above, dark floor, a soft horizon band.
    float up = clamp(-r.y * 0.5 + 0.5, 0.0, 1.0);
    return mix(vec3(0.04), vec3(0.9), smoothstep(0.35, 0.8, up)) + 0.15 * exp(-40.0 * r.y * r.y);
}

void main() {
    vec4 base = u_base_color;
    if (u_has_base_texture) {
        vec4 texel = texture(u_base_texture, v_uv);
        base *= vec4(srgb_to_linear(texel.rgb), texel.a);
    }
    int role = u_material < 32 ? u_material_role[u_material] : 0;
    float metallic = u_metallic;
    float roughness = clamp(u_roughness, 0.04, 1.0);
    if (role == 1) {
        base.rgb = srgb_to_linear(u_frame_color);
    } else if (role == 2) {
        base = vec4(srgb_to_linear(u_lens_color), u_lens_opacity);
        metallic = 0.0;
        roughness = 0.05;
    }
    if (u_alpha_mode == 1 && base.a < u_alpha_cutoff) discard;

    vec3 n = normalize(v_normal);
    vec3 v = normalize(-v_camera);
    if (dot(n, v) < 0.0) n = -n;  // two-sided
    vec3 key = normalize(KEY_DIRECTION);
    vec3 fill = normalize(FILL_DIRECTION);
    float shininess = 2.0 / (roughness * roughness * roughness * roughness + 1e-4);
    shininess = clamp(shininess, 4.0, 2048.0);
    vec3 f0 = mix(vec3(0.04), base.rgb, metallic);
    float fresnel = pow(1.0 - max(dot(n, v), 0.0), 5.0);
    vec3 reflectance = f0 + (1.0 - f0) * fresnel;

    float sky = clamp(-n.y * 0.5 + 0.5, 0.0, 1.0);
    vec3 ambient = mix(vec3(0.18, 0.17, 0.16), vec3(0.42, 0.44, 0.48), sky);
    float diffuse = 0.9 * max(dot(n, key), 0.0) + 0.3 * max(dot(n, fill), 0.0);
    vec3 lit = base.rgb * (1.0 - metallic) * (ambient + vec3(diffuse));
    vec3 gloss = reflectance * (1.1 * specular(n, v, key, shininess) + 0.35 * specular(n, v, fill, shininess));
    vec3 r = reflect(-v, n);
    vec3 mirrored = reflectance * environment(r) * mix(1.0, 0.25, roughness);

    if (u_alpha_mode == 2) {
        // Glass: the tint covers the background at its opacity; reflections add light.
        float alpha = clamp(base.a + 0.5 * fresnel * (1.0 - base.a), 0.0, 1.0);
        vec3 body = linear_to_srgb(lit) * alpha;
        vec3 shine = linear_to_srgb(gloss + 0.35 * mirrored);
        arfx_out = vec4(min(body + shine, vec3(1.0)), min(alpha + luminance(gloss), 1.0));
    } else {
        arfx_out = vec4(linear_to_srgb(lit + gloss + mirrored), 1.0);
    }
}
