// Hair colour, pass 1: the hair prior, so pass 2's filter reads colour and prior in one
// lookup per tap. Writes the frame's colour with, in alpha, 1 minus the prior: the model's
// hair probability made decisive, minus confident skin, faded out where the model's crop
// ends. Stored inverted so that the pixels this pass is not drawn on (its `cover` leaves
// every tile without hair above HAIR_LOW as it came, alpha 1) read as prior 0, as they are.

#include "hair_common.glsl"

void main() {
    vec4 src = arfx_source();
    float hair = texelFetch(u_mask_hair, ivec2(arfx_pixel()), 0).r;
    if (hair <= HAIR_LOW) {
        arfx_out = vec4(src.rgb, 1.0);
        return;
    }
    float skin = texelFetch(u_mask_skin, ivec2(arfx_pixel()), 0).r;
    float prior = smoothstep(HAIR_LOW, HAIR_HIGH, hair) * (1.0 - smoothstep(SKIN_LOW, SKIN_HIGH, skin));
    arfx_out = vec4(src.rgb, 1.0 - prior * crop_fade(arfx_pixel()));
}
