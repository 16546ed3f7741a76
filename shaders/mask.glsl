// Sampling masks (R8 textures in frame space, 1.0 = inside the region).

float arfx_mask(sampler2D mask, vec2 px) {
    return texture(mask, px / textureSize(mask, 0)).r;
}

#ifndef ARFX_VERTEX_SHADER
// The mask at the pixel being shaded: arfx_mask(mask, gl_FragCoord.xy) without the filtering
// (masks are frame-sized, so a pixel centre is a texel centre), which a software renderer
// (llvmpipe) pays for at every lookup.
float arfx_mask_here(sampler2D mask) {
    return texelFetch(mask, ivec2(gl_FragCoord.xy), 0).r;
}
#endif

// Mask softened over a disc of `radius` pixels: 16 golden-angle taps plus the centre.
// The spiral spreads taps evenly, so a small radius gives a smooth edge in one pass.
float arfx_mask_soft(sampler2D mask, vec2 px, float radius) {
    float centre = arfx_mask(mask, px);
    if (radius < 0.5) return centre;
    vec2 texel = 1.0 / vec2(textureSize(mask, 0));
    float total = centre;
    const float golden = 2.39996323;
    for (int i = 0; i < 16; ++i) {
        float r = radius * sqrt((float(i) + 0.5) / 16.0);
        float a = float(i) * golden;
        total += texture(mask, (px + r * vec2(cos(a), sin(a))) * texel).r;
    }
    return total / 17.0;
}
