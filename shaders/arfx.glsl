// arfx standard pass inputs, prepended to every effect shader.
//
// Coordinates: pixel (0, 0) is the top-left of the image (numpy row 0) and y grows
// downward, exactly like landmark coordinates, so arfx_pixel() and a landmark's x, y
// can be compared directly. uv = pixel / u_resolution.
//
// Landmarks and pose exist only in effects whose manifest declares `landmarks = true` /
// `pose = true` (arfx defines ARFX_USE_LANDMARKS / ARFX_USE_POSE for them).

#define ARFX_MAX_FACES 8
#define ARFX_LANDMARKS 478

uniform sampler2D u_frame;                 // the image entering this pass (linear filter)
uniform sampler2D u_input;                 // the image that entered this effect's first pass
uniform int u_pass;                        // index of this pass in the effect, from 0
uniform vec2 u_resolution;                 // frame size in pixels
uniform int u_face_count;                  // number of valid entries below
uniform vec4 u_face_box[ARFX_MAX_FACES];   // per face: x0, y0, x1, y1 in pixels

// The number of faces in this frame (u_face_count) as a compile-time constant: arfx compiles
// each pass once per face count it meets. Loop over faces up to it, not up to u_face_count:
// such loops unroll and read per-face arrays at constant indices, where a software renderer
// (llvmpipe) would otherwise fetch the array once per pixel at each step.
#ifndef ARFX_FACE_COUNT
#define ARFX_FACE_COUNT u_face_count
#endif

#ifndef ARFX_VERTEX_SHADER
out vec4 arfx_out;

// Centre of the pixel being shaded, in image pixels.
vec2 arfx_pixel() { return gl_FragCoord.xy; }

vec2 arfx_uv() { return gl_FragCoord.xy / u_resolution; }

// The input pixel exactly as uploaded: no filtering, so untouched pixels stay bit-exact.
vec4 arfx_source() { return texelFetch(u_frame, ivec2(gl_FragCoord.xy), 0); }

// This pixel as it entered the effect (before its first pass), exactly.
vec4 arfx_input() { return texelFetch(u_input, ivec2(gl_FragCoord.xy), 0); }
#endif

// Index of the first face whose box, grown by `margin` times its size, holds `px`; -1 if none.
int arfx_face_at(vec2 px, float margin) {
    for (int i = 0; i < ARFX_FACE_COUNT && i < ARFX_MAX_FACES; ++i) {
        vec4 b = u_face_box[i];
        vec2 grow = (b.zw - b.xy) * margin;
        if (all(greaterThanEqual(px, b.xy - grow)) && all(lessThanEqual(px, b.zw + grow))) {
            return i;
        }
    }
    return -1;
}

#ifdef ARFX_USE_LANDMARKS
// Every face's 478 mesh points: texel (index, face) = x, y in pixels, z (MediaPipe's relative
// depth, in pixels, smaller = nearer), w = 1 where the point exists (0 for faces >= count).
uniform sampler2D u_landmarks;

vec2 arfx_landmark(int face, int index) {
    return texelFetch(u_landmarks, ivec2(index, face), 0).xy;
}

float arfx_landmark_depth(int face, int index) {
    return texelFetch(u_landmarks, ivec2(index, face), 0).z;
}
#endif

#ifdef ARFX_USE_POSE
// Head pose per face (see docs/head-pose.md): a head-frame point p (millimetres, origin
// between the irises) is at u_face_rotation[f] * p + u_face_translation[f] in camera space,
// and a camera-space point c projects to pixel (u_camera * c).xy / (u_camera * c).z.
uniform mat3 u_face_rotation[ARFX_MAX_FACES];
uniform vec3 u_face_translation[ARFX_MAX_FACES];
uniform mat3 u_camera;                     // pinhole intrinsics, pixels

vec3 arfx_head_to_camera(int face, vec3 head_mm) {
    return u_face_rotation[face] * head_mm + u_face_translation[face];
}

vec2 arfx_camera_to_pixel(vec3 camera_mm) {
    vec3 h = u_camera * camera_mm;
    return h.xy / h.z;
}

vec2 arfx_head_to_pixel(int face, vec3 head_mm) {
    return arfx_camera_to_pixel(arfx_head_to_camera(face, head_mm));
}
#endif

#ifdef ARFX_MESH_PASS
// Mesh passes (a pass with `mesh = ...`): the model is drawn once per face with a pose,
// over a copy of the pass's input, depth-tested (see docs/effect-authoring.md).
uniform int u_face;                        // the face being drawn
uniform mat4 u_projection;                 // camera frame (mm) -> clip space, from u_camera
uniform vec3 u_mesh_min;                   // the model's bounds, in its file's units and axes
uniform vec3 u_mesh_max;

// The material of the primitive being drawn (glTF metallic-roughness).
uniform int u_material;                    // index of the material in the model
uniform vec4 u_base_color;                 // linear RGBA (baseColorFactor)
uniform sampler2D u_base_texture;          // baseColorTexture, sRGB-encoded RGBA
uniform bool u_has_base_texture;
uniform float u_metallic;
uniform float u_roughness;
uniform int u_alpha_mode;                  // 0 OPAQUE, 1 MASK, 2 BLEND (drawn after the others)
uniform float u_alpha_cutoff;              // for MASK

#ifdef ARFX_VERTEX_SHADER
in vec3 in_position;                       // the model's vertices, node transforms applied
in vec3 in_normal;
in vec2 in_uv;                             // TEXCOORD_0 (0, 0 when the model has none)
#endif

vec4 arfx_camera_to_clip(vec3 camera_mm) { return u_projection * vec4(camera_mm, 1.0); }
#endif
