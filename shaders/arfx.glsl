// arfx standard pass inputs, prepended to every effect shader.
//
// Coordinates: pixel (0, 0) is the top-left of the image (numpy row 0) and y grows
// downward, exactly like landmark coordinates, so arfx_pixel() and a landmark's x, y
// can be compared directly. uv = pixel / u_resolution.

#define ARFX_MAX_FACES 8

uniform sampler2D u_frame;                 // the image entering this pass (linear filter)
uniform vec2 u_resolution;                 // frame size in pixels
uniform int u_face_count;                  // number of valid entries below
uniform vec4 u_face_box[ARFX_MAX_FACES];   // per face: x0, y0, x1, y1 in pixels

out vec4 arfx_out;

// Centre of the pixel being shaded, in image pixels.
vec2 arfx_pixel() { return gl_FragCoord.xy; }

vec2 arfx_uv() { return gl_FragCoord.xy / u_resolution; }

// The input pixel exactly as uploaded: no filtering, so untouched pixels stay bit-exact.
vec4 arfx_source() { return texelFetch(u_frame, ivec2(gl_FragCoord.xy), 0); }

// Index of the first face whose box, grown by `margin` times its size, holds `px`; -1 if none.
int arfx_face_at(vec2 px, float margin) {
    for (int i = 0; i < u_face_count && i < ARFX_MAX_FACES; ++i) {
        vec4 b = u_face_box[i];
        vec2 grow = (b.zw - b.xy) * margin;
        if (all(greaterThanEqual(px, b.xy - grow)) && all(lessThanEqual(px, b.zw + grow))) {
            return i;
        }
    }
    return -1;
}
