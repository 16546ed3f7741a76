// Colour-space helpers. Shading maths belongs in linear light; textures hold sRGB.
//
//   srgb_to_linear / linear_to_srgb    the sRGB transfer curve (IEC 61966-2-1)
//   luminance                          relative luminance of a linear colour (Rec. 709)
//   linear_to_xyz / xyz_to_linear      linear sRGB <-> CIE XYZ (D65, Y = 1 for white)
//   linear_to_lab / lab_to_linear      linear sRGB <-> CIELAB (D65): L in [0, 100], a, b ~ [-128, 127]
//   srgb_to_lab / lab_to_srgb          the same from / to sRGB-encoded colours
//   rgb_to_hsl / hsl_to_rgb            HSL of a colour in [0, 1]: hue in [0, 1), saturation, lightness

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

vec3 linear_to_xyz(vec3 c) {
    return vec3(dot(c, vec3(0.4124564, 0.3575761, 0.1804375)),
                dot(c, vec3(0.2126729, 0.7151522, 0.0721750)),
                dot(c, vec3(0.0193339, 0.1191920, 0.9503041)));
}

vec3 xyz_to_linear(vec3 xyz) {
    return vec3(dot(xyz, vec3(3.2404542, -1.5371385, -0.4985314)),
                dot(xyz, vec3(-0.9692660, 1.8760108, 0.0415560)),
                dot(xyz, vec3(0.0556434, -0.2040259, 1.0572252)));
}

const vec3 ARFX_D65_WHITE = vec3(0.95047, 1.0, 1.08883);

vec3 arfx_lab_f(vec3 t) {
    const float d = 6.0 / 29.0;
    vec3 curve = pow(max(t, vec3(0.0)), vec3(1.0 / 3.0));
    vec3 line = t / (3.0 * d * d) + 4.0 / 29.0;
    return mix(curve, line, vec3(lessThanEqual(t, vec3(d * d * d))));
}

vec3 arfx_lab_f_inverse(vec3 t) {
    const float d = 6.0 / 29.0;
    vec3 line = 3.0 * d * d * (t - 4.0 / 29.0);
    return mix(t * t * t, line, vec3(lessThanEqual(t, vec3(d))));
}

vec3 linear_to_lab(vec3 c) {
    vec3 f = arfx_lab_f(linear_to_xyz(c) / ARFX_D65_WHITE);
    return vec3(116.0 * f.y - 16.0, 500.0 * (f.x - f.y), 200.0 * (f.y - f.z));
}

vec3 lab_to_linear(vec3 lab) {
    float fy = (lab.x + 16.0) / 116.0;
    vec3 f = vec3(fy + lab.y / 500.0, fy, fy - lab.z / 200.0);
    return xyz_to_linear(arfx_lab_f_inverse(f) * ARFX_D65_WHITE);
}

vec3 srgb_to_lab(vec3 c) { return linear_to_lab(srgb_to_linear(c)); }

vec3 lab_to_srgb(vec3 lab) { return linear_to_srgb(lab_to_linear(lab)); }

vec3 rgb_to_hsl(vec3 c) {
    float high = max(c.r, max(c.g, c.b));
    float low = min(c.r, min(c.g, c.b));
    float l = 0.5 * (high + low);
    float d = high - low;
    if (d <= 0.0) return vec3(0.0, 0.0, l);
    float s = l > 0.5 ? d / (2.0 - high - low) : d / (high + low);
    float h = high == c.r ? (c.g - c.b) / d + (c.g < c.b ? 6.0 : 0.0)
            : high == c.g ? (c.b - c.r) / d + 2.0
            : (c.r - c.g) / d + 4.0;
    return vec3(h / 6.0, s, l);
}

vec3 hsl_to_rgb(vec3 hsl) {
    vec3 hue = clamp(abs(mod(hsl.x * 6.0 + vec3(0.0, 4.0, 2.0), 6.0) - 3.0) - 1.0, 0.0, 1.0);
    return hsl.z + hsl.y * (hue - 0.5) * (1.0 - abs(2.0 * hsl.z - 1.0));
}
