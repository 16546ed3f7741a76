// Eyewear, 2D mode: a flat picture of glasses on each face. hooks.py maps every pixel to the
// picture's uv through a homography: the picture stands in the plane of the frame front in
// the head frame, so it moves, scales, rolls and foreshortens with the head pose.

#include "mask.glsl"

uniform sampler2D u_image;                  // straight (not premultiplied) RGBA
uniform sampler2D u_mask_occlusion;         // something in front of the face hides the glasses
uniform sampler2D u_mask_hands;             // ... as does a hand
uniform mat3 u_overlay[ARFX_MAX_FACES];     // pixel -> picture uv (homogeneous)
uniform float u_overlay_on[ARFX_MAX_FACES]; // 1 where the face has a pose

void main() {
    vec4 src = arfx_source();
    vec2 px = arfx_pixel();
    vec3 color = src.rgb;
    bool touched = false;
    for (int f = 0; f < ARFX_FACE_COUNT && f < ARFX_MAX_FACES; ++f) {
        if (u_overlay_on[f] <= 0.0) continue;
        vec3 q = u_overlay[f] * vec3(px, 1.0);
        if (q.z <= 0.0) continue;
        vec2 uv = q.xy / q.z;
        if (any(lessThan(uv, vec2(0.0))) || any(greaterThan(uv, vec2(1.0)))) continue;
        vec4 glasses = texture(u_image, uv);
        if (glasses.a <= 0.0) continue;
        float visible = 1.0 - max(arfx_mask_here(u_mask_occlusion), arfx_mask_here(u_mask_hands));
        color = mix(color, glasses.rgb, glasses.a * visible);
        touched = true;
    }
    arfx_out = touched ? vec4(color, src.a) : src;
}
