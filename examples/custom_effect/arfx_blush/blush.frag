// Blush: the skin's hue moved toward the blush colour in CIELAB on a soft disc over each
// cheek, keeping the skin's own lightness variation (its shading and texture). The cheek centres and the
// size come from the face-mesh landmarks, so the blush follows the face as it moves and turns.

#include "color.glsl"

uniform vec3 u_color;       // sRGB
uniform float u_intensity;
uniform float u_size;

// MediaPipe face-mesh indices: points on each cheekbone, and the face's outline at the ears.
const int CHEEK_LOW_R = 50, CHEEK_HIGH_R = 117;     // the person's right cheek (image left)
const int CHEEK_LOW_L = 280, CHEEK_HIGH_L = 346;    // the person's left cheek (image right)
const int EDGE_R = 234, EDGE_L = 454;

// Weight of the blush at `px` for one cheek: 1 at the centre, falling smoothly to exactly 0.
float cheek(int face, int low, int high, float radius, vec2 px) {
    vec2 centre = mix(arfx_landmark(face, low), arfx_landmark(face, high), 0.3);
    return 1.0 - smoothstep(0.0, radius, distance(px, centre));
}

void main() {
    vec4 src = arfx_source();
    arfx_out = src;
    vec2 px = arfx_pixel();
    float weight = 0.0;
    for (int face = 0; face < u_face_count && face < ARFX_MAX_FACES; ++face) {
        float width = distance(arfx_landmark(face, EDGE_R), arfx_landmark(face, EDGE_L));
        float radius = width * u_size / 6.0;
        weight = max(weight, cheek(face, CHEEK_LOW_R, CHEEK_HIGH_R, radius, px));
        weight = max(weight, cheek(face, CHEEK_LOW_L, CHEEK_HIGH_L, radius, px));
    }
    weight *= u_intensity;
    if (weight <= 0.0) return;  // untouched pixels stay bit-identical

    // Real blush is sheer: it moves the skin part of the way toward the colour's hue and
    // darkens it a little, never all the way to the flat colour.
    vec3 skin = srgb_to_lab(src.rgb);
    vec3 tint = srgb_to_lab(u_color);
    vec3 lab = vec3(skin.x - 4.0 * weight, mix(skin.yz, tint.yz, 0.5 * weight));
    arfx_out = vec4(clamp(lab_to_srgb(lab), 0.0, 1.0), src.a);
}
