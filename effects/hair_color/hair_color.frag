// Hair colour, pass 2: refine the hair mask against the frame, then recolour the hair.
//
// Mask: the face model's hair probability is coarse (a 256-pixel crop scaled up), so it is
// refined against the frame with a colour guided filter (He et al.): over a window, the
// mask (pass 1's prior, in u_frame's alpha) is fitted as a linear function of the pixel
// colour, which moves its edge onto the real boundary between hair and wall or skin. A
// pixel whose colour is far from this face's hair (hooks.py's statistics) is left out.
//
// Colour (CIELAB): a tone curve moves the hair's own lightness levels to the new colour's,
// so black hair can become blonde while every strand keeps its place in the hair's range;
// hue and chroma come from the chosen colour, less saturated in deep shadow and toward
// white in highlights, as on a real glossy fibre. Pixels the mask leaves out are copied
// exactly.

#include "color.glsl"
#include "hair_common.glsl"

// Pass 1's output at the texel nearest px (inside the frame), its prior back in alpha (pass 1
// stores 1 - prior: see hair_mask.frag). The filter's statistics need no interpolation, and
// an unfiltered lookup is much cheaper on a software rasteriser.
vec4 tap(vec2 px) {
    vec4 texel = texelFetch(u_frame, ivec2(clamp_px(px)), 0);
    return vec4(texel.rgb, 1.0 - texel.a);
}

const vec2 RING[8] = vec2[8](vec2(1.0, 0.0), vec2(0.7071, 0.7071), vec2(0.0, 1.0),
                             vec2(-0.7071, 0.7071), vec2(-1.0, 0.0), vec2(-0.7071, -0.7071),
                             vec2(0.0, -1.0), vec2(0.7071, -0.7071));

// Colour guided filter at px: the prior fitted as a.I + b over a window around px.
float refined_mask(vec2 px, float radius, float eps) {
    // Away from an edge the window is all hair or all not-hair: skip the fit.
    float centre = tap(px).a;
    float low = centre, high = centre;
    for (int i = 0; i < 8; ++i) {
        float p = tap(px + radius * RING[i]).a;
        low = min(low, p);
        high = max(high, p);
    }
    if (high <= 0.002) return 0.0;
    if (low >= 0.998) return 1.0;

    vec3 sum_i = vec3(0.0);
    // The colour covariance is symmetric: six sums, not nine (llvmpipe pays for each).
    vec3 sum_squares = vec3(0.0);  // rr, gg, bb
    vec3 sum_cross = vec3(0.0);    // rg, rb, gb
    vec3 sum_ip = vec3(0.0);
    float sum_p = 0.0;
    float spacing = radius / float(TAPS);
    for (int y = -TAPS; y <= TAPS; ++y) {
        for (int x = -TAPS; x <= TAPS; ++x) {
            vec4 t = tap(px + vec2(x, y) * spacing);
            sum_i += t.rgb;
            sum_squares += t.rgb * t.rgb;
            sum_cross += t.rrg * t.gbb;
            sum_ip += t.rgb * t.a;
            sum_p += t.a;
        }
    }
    float n = float((2 * TAPS + 1) * (2 * TAPS + 1));
    vec3 mean_i = sum_i / n;
    float mean_p = sum_p / n;
    mat3 sum_ii = mat3(sum_squares.r, sum_cross.x, sum_cross.y,
                       sum_cross.x, sum_squares.g, sum_cross.z,
                       sum_cross.y, sum_cross.z, sum_squares.b);
    mat3 covariance = sum_ii / n - outerProduct(mean_i, mean_i);
    // Regularise relative to the window's own contrast, so a dark edge (dark hair on a dark
    // wall) snaps as well as a bright one.
    float contrast = (covariance[0][0] + covariance[1][1] + covariance[2][2]) / 3.0;
    covariance += mat3(eps * contrast + 1e-6);
    vec3 a = inverse(covariance) * (sum_ip / n - mean_i * mean_p);
    float b = mean_p - dot(a, mean_i);
    return clamp(dot(a, arfx_input().rgb) + b, 0.0, 1.0);
}

// The tip colour's share at px: 0 at the crown of face's hair, rising toward its ends (the
// hair seen in this frame, measured along the head, so it follows the head as it moves).
// `ombre` sets how far up from the ends the gradient starts: 1 = at the crown.
float ombre_weight(int face, vec2 px) {
    if (u_ombre <= 0.0) return 0.0;
    vec4 axis = u_hair_axis[face];
    float t = dot(px - axis.xy, axis.zw);
    vec2 span = u_hair_span[face];
    float extent = max(span.y - span.x, 0.2);
    float start = span.y - u_ombre * extent;
    float end = span.y + (1.0 - u_ombre) * 0.25 * extent;
    return smoothstep(start, end, t);
}

// How much a pixel's colour looks like this face's hair: 0 for what is far lighter or darker
// than the hair's own range, or of a clearly different hue (a wall or curtain the model
// took for hair, the scalp in a parting).
float hair_likeness(int face, vec3 lab) {
    vec3 levels = u_hair_levels[face];
    vec3 chroma = u_hair_chroma[face];
    float light = 1.0 - smoothstep(levels.z + 10.0, levels.z + 30.0, lab.x);
    float dark = smoothstep(levels.x - 30.0, levels.x - 10.0, lab.x);
    float off_hue = distance(lab.yz, chroma.xy) - chroma.z;
    return light * dark * (1.0 - smoothstep(6.0, 18.0, off_hue));
}

// Lightness kept inside [0, 100] with soft knees, so no strand clips flat.
float soft_lightness(float l) {
    if (l > 85.0) return 85.0 + 15.0 * tanh((l - 85.0) / 15.0);
    if (l < 8.0) return 8.0 * exp((l - 8.0) / 8.0);
    return l;
}

// The dyed colour (Lab) of a hair pixel of lightness `l` on face `face`.
//
// A tone curve moves the hair's own lightness levels (5th, 50th, 95th percentile) to the
// new colour's: the median toward the colour's lightness by `lift`, the darks and lights
// around it to the spread hair of that lightness shows (more than dark hair's when
// lightening), so every strand keeps its place in the hair's range without clipping.
vec3 dyed_lab(float l, int face, vec3 target, float lift) {
    vec3 levels = u_hair_levels[face];
    float median = levels.y;
    float new_median = mix(median, target.x, lift);
    // Dark hair shows less of its highlights than light hair.
    float height = HIGHLIGHT_HEIGHT * (100.0 - new_median) * clamp(new_median / 30.0, 0.4, 1.0);
    // ... but never stretched more than MAX_STRETCH times: crushed blacks hold only noise.
    float depth = min(SHADOW_DEPTH * new_median, MAX_STRETCH * max(median - levels.x, 1.0));
    float below = mix(max(median - levels.x, 1.0), depth, lift);
    float above = mix(max(levels.z - median, 1.0), height, lift);
    above *= mix(0.5, 1.5, u_shine);
    float new_l = l < median
        ? new_median - (median - l) / max(median - levels.x, 1.0) * below
        : new_median + (l - median) / max(levels.z - median, 1.0) * above;
    new_l = soft_lightness(new_l);
    // The colour's chroma at its own lightness; less in deep shadow, and fading toward
    // white in highlights, as a shaded, glossy fibre of that colour would look.
    float chroma = new_l < target.x
        ? pow(new_l / max(target.x, 1.0), 0.7)
        : (100.0 - new_l) / max(100.0 - target.x, 1.0);
    // A muted picture gets a muted dye, as its skin and everything else is.
    vec2 ab = target.yz * clamp(chroma, 0.0, 1.0) * u_saturation[face];
    // Shaded yellow reads olive; blonde hair's shadows are golden brown: turn yellow hues
    // toward orange as they darken. Skipped where hooks.py knows no colour is yellow: a
    // software renderer computes the hue for every pixel otherwise.
    if (u_maybe_yellow) {
        float hue = atan(target.z, target.y);
        float yellow = smoothstep(0.95, 1.35, hue) * (1.0 - smoothstep(1.9, 2.4, hue));
        float warm = yellow * min(1.5 * clamp(1.0 - new_l / max(target.x, 1.0), 0.0, 1.0), 1.0);
        if (warm > 0.0) {
            hue = mix(hue, WARM_HUE, warm);
            ab = length(ab) * vec2(cos(hue), sin(hue));
        }
    }
    return vec3(new_l, ab);
}

// Lab to linear RGB inside the gamut: what falls out is desaturated toward its own grey.
vec3 lab_to_linear_in_gamut(vec3 lab) {
    vec3 rgb = lab_to_linear(lab);
    float grey = clamp(lab_to_linear(vec3(lab.x, 0.0, 0.0)).g, 0.0, 1.0);
    float t = 0.0;
    for (int c = 0; c < 3; ++c) {
        if (rgb[c] > 1.0) t = max(t, (rgb[c] - 1.0) / max(rgb[c] - grey, 1e-5));
        if (rgb[c] < 0.0) t = max(t, -rgb[c] / max(grey - rgb[c], 1e-5));
    }
    return clamp(mix(rgb, vec3(grey), clamp(t, 0.0, 1.0)), 0.0, 1.0);
}

void main() {
    vec4 src = arfx_input();
    arfx_out = src;
    vec2 px = arfx_pixel();
    // Most of the frame is surely not hair: leave it after one lookup. The filter below
    // may move the edge, but only within the model's own soft margin.
    if (texelFetch(u_mask_hair, ivec2(px), 0).r < REACH) return;
    if (texelFetch(u_mask_skin, ivec2(px), 0).r >= SKIN_HIGH) return;
    int face = nearest_face(px);
    if (face < 0 || u_strength <= 0.0) return;

    float radius = u_crop_pixel[face] * mix(2.0, 6.0, u_edge);
    float eps = mix(0.02, 0.5, u_edge * u_edge);
    float mask = refined_mask(px, radius, eps);
    // Drop the filter's faint tails so pixels off the hair stay bit-exact.
    float weight = smoothstep(0.04, 0.96, mask) * u_strength;
    if (weight <= 0.0) return;

    vec3 hair = srgb_to_linear(src.rgb);
    vec3 lab = linear_to_lab(hair);
    weight *= hair_likeness(face, lab);
    if (weight <= 0.0) return;
    vec3 target = mix(u_root_lab, u_tip_lab, ombre_weight(face, px));
    // Lift fully only where the pixel is surely hair: a wrong soft edge is then a faint
    // tint, not a glow on a dark background.
    float lift = u_lift * smoothstep(0.0, 0.5, mask);
    vec3 dyed = lab_to_linear_in_gamut(dyed_lab(lab.x, face, target, lift));
    arfx_out = vec4(linear_to_srgb(mix(hair, dyed, weight)), src.a);
}
