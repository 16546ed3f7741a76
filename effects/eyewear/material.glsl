// The eyewear material of the primitive being drawn: the glTF material, with the frame colour
// for materials in the frame role and the lens tint for those in the lens role (hooks.py says
// which is which).

uniform vec3 u_frame_color;                 // sRGB
uniform vec3 u_lens_color;                  // sRGB
uniform float u_lens_opacity;
uniform int u_material_role[32];            // per material: 0 as in the file, 1 frame, 2 lens

struct Material {
    vec4 color;  // linear RGBA, before the base colour texture
    float metallic;
    float roughness;
};

Material eyewear_material() {
    Material m = Material(u_base_color, u_metallic, u_roughness);
    int role = u_material < 32 ? u_material_role[u_material] : 0;
    if (role == 1) {
        m.color.rgb = srgb_to_linear(u_frame_color);
    } else if (role == 2) {
        m = Material(vec4(srgb_to_linear(u_lens_color), u_lens_opacity), 0.0, 0.05);
    }
    return m;
}
