// Eyewear mesh pass, vertex stage: model -> head frame (the fit hooks.py computes per face)
// -> camera frame (the face's head pose) -> clip space (the frame's camera).

uniform mat4 u_model[ARFX_MAX_FACES];  // model file units -> head-frame mm, per face

out vec3 v_camera;  // camera-frame position, mm
out vec3 v_normal;  // camera-frame normal
out vec2 v_uv;

void main() {
    mat4 model = u_model[u_face];
    vec3 head = (model * vec4(in_position, 1.0)).xyz;
    v_camera = arfx_head_to_camera(u_face, head);
    v_normal = u_face_rotation[u_face] * (mat3(model) * in_normal);  // the scale is uniform
    v_uv = in_uv;
    gl_Position = arfx_camera_to_clip(v_camera);
}
