// Eyewear mesh pass, vertex stage: model -> head frame (the fit hooks.py computes per face)
// -> camera frame (the face's head pose) -> clip space (the frame's camera), and the lighting.
//
// Lighting is computed per vertex (the models are finely tessellated; on a software renderer
// with multisampling this halves the cost of the pass). Lights live in the camera frame
// (x right, y down, z away from the camera): a key light from the upper left, a softer fill
// from the right, a sky/floor ambient, and a fake studio environment that glossy and
// metallic surfaces reflect.

#include "color.glsl"
#include "material.glsl"

uniform mat4 u_model[ARFX_MAX_FACES];  // model file units -> head-frame mm, per face

out vec2 v_uv;
out vec3 v_diffuse;   // multiplies the base colour (linear)
out vec3 v_specular;  // added (linear)
out float v_fresnel;
flat out vec4 v_base;  // the material's colour (linear RGBA): once a vertex, not a pixel

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
    mat4 model = u_model[u_face];
    vec3 head = (model * vec4(in_position, 1.0)).xyz;
    vec3 camera = arfx_head_to_camera(u_face, head);
    gl_Position = arfx_camera_to_clip(camera);
    v_uv = in_uv;

    Material m = eyewear_material();
    v_base = m.color;
    vec3 n = normalize(u_face_rotation[u_face] * (mat3(model) * in_normal));  // uniform scale
    vec3 v = normalize(-camera);
    if (dot(n, v) < 0.0) n = -n;  // two-sided
    vec3 key = normalize(KEY_DIRECTION);
    vec3 fill = normalize(FILL_DIRECTION);
    float roughness = clamp(m.roughness, 0.04, 1.0);
    float shininess = clamp(2.0 / (roughness * roughness * roughness * roughness + 1e-4), 4.0, 2048.0);
    vec3 f0 = mix(vec3(0.04), m.color.rgb, m.metallic);
    float facing = 1.0 - max(dot(n, v), 0.0);
    v_fresnel = facing * facing * facing * facing * facing;
    vec3 reflectance = f0 + (1.0 - f0) * v_fresnel;

    float sky = clamp(-n.y * 0.5 + 0.5, 0.0, 1.0);
    vec3 ambient = mix(vec3(0.18, 0.17, 0.16), vec3(0.42, 0.44, 0.48), sky);
    float diffuse = 0.9 * max(dot(n, key), 0.0) + 0.3 * max(dot(n, fill), 0.0);
    v_diffuse = (1.0 - m.metallic) * (ambient + vec3(diffuse));
    vec3 gloss = reflectance * (1.1 * specular(n, v, key, shininess) + 0.35 * specular(n, v, fill, shininess));
    vec3 mirrored = reflectance * environment(reflect(-v, n)) * mix(1.0, 0.25, roughness);
    v_specular = gloss + mirrored * (u_alpha_mode == 2 ? 0.35 : 1.0);
}
