//! Sparklines: the points of a small SVG polyline for a series over the last hour, drawn by
//! the server (no script, no axes). Numbers only, so the template needs no raw HTML.

/// The drawing's box: one unit per minute, wide and flat.
pub const WIDTH: f64 = 60.0;
pub const HEIGHT: f64 = 16.0;
/// The hour a sparkline spans, in seconds.
const SPAN: f64 = 3600.0;

/// The `points` of a polyline for `(at, value)` pairs ending at `now`: time runs left to right
/// over the last hour, the largest value touches the top, zero the bottom. Empty without
/// values.
pub fn points(series: &[(i64, f64)], now: i64) -> String {
    let max = series.iter().map(|(_, v)| *v).fold(0.0, f64::max);
    let mut out = String::new();
    for (at, value) in series {
        let age = (now - at).clamp(0, SPAN as i64) as f64;
        let x = WIDTH * (1.0 - age / SPAN);
        // Half a unit of margin, so a line at the top or bottom is not cut in half.
        let y = match max > 0.0 {
            true => HEIGHT - 0.5 - (HEIGHT - 1.0) * value / max,
            false => HEIGHT - 0.5,
        };
        if !out.is_empty() {
            out.push(' ');
        }
        out.push_str(&format!("{x:.1},{y:.1}"));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_newest_is_right_and_the_largest_on_top() {
        let now = 10_000;
        let got = points(&[(now - 3600, 0.0), (now - 1800, 5.0), (now, 10.0)], now);
        assert_eq!(got, "0.0,15.5 30.0,8.0 60.0,0.5");
    }

    #[test]
    fn all_zero_lies_flat_on_the_bottom_and_nothing_is_empty() {
        assert_eq!(points(&[(0, 0.0), (60, 0.0)], 3600), "0.0,15.5 1.0,15.5");
        assert_eq!(points(&[], 0), "");
    }
}
