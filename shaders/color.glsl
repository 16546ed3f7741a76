// Colour-space helpers. Shading maths belongs in linear light; textures hold sRGB.

vec3 srgb_to_linear(vec3 c) {
    vec3 low = c / 12.92;
    vec3 high = pow((c + 0.055) / 1.055, vec3(2.4));
    return mix(high, low, vec3(lessThanEqual(c, vec3(0.04045))));
}

vec3 linear_to_srgb(vec3 c) {
    c = max(c, vec3(0.0));
    vec3 low = c * 12.92;
    vec3 high = 1.055 * pow(c, vec3(1.0 / 2.4)) - 0.055;
    return mix(high, low, vec3(lessThanEqual(c, vec3(0.0031308))));
}

// Relative luminance (Rec. 709 primaries) of a linear colour.
float luminance(vec3 linear_rgb) { return dot(linear_rgb, vec3(0.2126, 0.7152, 0.0722)); }
