//! A small PNG line chart (no font or plotting dependency): axes, grid, up to four series,
//! a title and labels in a built-in 5x7 pixel font. Enough for an officer to read the
//! drill's turnout and latency over time.

pub struct Series<'a> {
    pub name: &'a str,
    pub color: [u8; 3],
    /// (x, y) points, x ascending.
    pub points: Vec<(f64, f64)>,
}

pub struct Panel<'a> {
    pub title: &'a str,
    pub y_label: &'a str,
    pub series: Vec<Series<'a>>,
}

const W: usize = 1000;
const PANEL_H: usize = 320;
const LEFT: usize = 70;
const RIGHT: usize = 20;
const TOP: usize = 34;
const BOTTOM: usize = 40;

struct Canvas {
    w: usize,
    h: usize,
    px: Vec<u8>,
}

impl Canvas {
    fn set(&mut self, x: i64, y: i64, c: [u8; 3]) {
        if x >= 0 && y >= 0 && (x as usize) < self.w && (y as usize) < self.h {
            let i = (y as usize * self.w + x as usize) * 3;
            self.px[i..i + 3].copy_from_slice(&c);
        }
    }

    fn line(&mut self, (x0, y0): (i64, i64), (x1, y1): (i64, i64), c: [u8; 3], thick: i64) {
        let (dx, dy) = ((x1 - x0).abs(), -(y1 - y0).abs());
        let (sx, sy) = (if x0 < x1 { 1 } else { -1 }, if y0 < y1 { 1 } else { -1 });
        let (mut x, mut y, mut err) = (x0, y0, dx + dy);
        loop {
            for t in 0..thick {
                self.set(x, y + t, c);
            }
            if x == x1 && y == y1 {
                break;
            }
            let e2 = 2 * err;
            if e2 >= dy {
                err += dy;
                x += sx;
            }
            if e2 <= dx {
                err += dx;
                y += sy;
            }
        }
    }

    fn text(&mut self, x: i64, y: i64, s: &str, c: [u8; 3]) {
        for (i, ch) in s.chars().enumerate() {
            let rows = glyph(ch.to_ascii_uppercase());
            for (r, bits) in rows.iter().enumerate() {
                for col in 0..5 {
                    if bits & (0x10 >> col) != 0 {
                        self.set(x + i as i64 * 6 + col, y + r as i64, c);
                    }
                }
            }
        }
    }
}

/// Renders the panels one above the other and writes a PNG.
/// All panels share the x axis `0..=x_max`.
pub fn write_png(path: &std::path::Path, x_label: &str, x_max: f64, panels: &[Panel<'_>]) -> anyhow::Result<()> {
    let h = PANEL_H * panels.len();
    let mut c = Canvas { w: W, h, px: vec![255; W * h * 3] };
    for (i, panel) in panels.iter().enumerate() {
        draw_panel(&mut c, i * PANEL_H, panel, x_label, x_max.max(1e-9));
    }
    let file = std::fs::File::create(path)?;
    let mut enc = png::Encoder::new(std::io::BufWriter::new(file), W as u32, h as u32);
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    let mut writer = enc.write_header()?;
    writer.write_image_data(&c.px)?;
    writer.finish()?;
    Ok(())
}

fn draw_panel(c: &mut Canvas, top: usize, p: &Panel<'_>, x_label: &str, x_max: f64) {
    let (grey, dark) = ([225, 225, 225], [40, 40, 40]);
    let all = p.series.iter().flat_map(|s| s.points.iter());
    let y_max = nice(all.map(|pt| pt.1).fold(1e-9, f64::max));
    let (x0, y0) = (LEFT as i64, (top + PANEL_H - BOTTOM) as i64);
    let (pw, ph) = ((W - LEFT - RIGHT) as f64, (PANEL_H - TOP - BOTTOM) as f64);
    let to_px = |x: f64, y: f64| (x0 + (x / x_max * pw) as i64, y0 - (y / y_max * ph) as i64);
    for k in 0..=4 {
        let y = y_max * k as f64 / 4.0;
        let (_, py) = to_px(0.0, y);
        c.line((x0, py), (x0 + pw as i64, py), grey, 1);
        let label = short(y);
        c.text(x0 - 8 - 6 * label.len() as i64, py - 3, &label, dark);
    }
    for k in 0..=5 {
        let x = x_max * k as f64 / 5.0;
        let (px, _) = to_px(x, 0.0);
        c.line((px, y0), (px, y0 + 4), dark, 1);
        let label = short(x);
        c.text(px - 3 * label.len() as i64, y0 + 8, &label, dark);
    }
    c.line((x0, y0), (x0 + pw as i64, y0), dark, 1);
    c.line((x0, y0 - ph as i64), (x0, y0), dark, 1);
    c.text(x0, top as i64 + 8, p.title, dark);
    c.text(x0 + pw as i64 - 6 * x_label.len() as i64, y0 + 22, x_label, dark);
    c.text(4, top as i64 + 22, p.y_label, dark);
    let mut legend_x = x0 + 6 * p.title.len() as i64 + 30;
    for s in &p.series {
        c.line((legend_x, top as i64 + 11), (legend_x + 16, top as i64 + 11), s.color, 3);
        c.text(legend_x + 22, top as i64 + 8, s.name, dark);
        legend_x += 22 + 6 * s.name.len() as i64 + 24;
        for pair in s.points.windows(2) {
            c.line(to_px(pair[0].0, pair[0].1), to_px(pair[1].0, pair[1].1), s.color, 2);
        }
    }
}

/// A round axis maximum at or above `v`.
fn nice(v: f64) -> f64 {
    let step = 10f64.powf(v.log10().floor());
    [1.0, 2.0, 2.5, 5.0, 10.0].iter().map(|m| m * step).find(|c| *c >= v).unwrap_or(v)
}

fn short(v: f64) -> String {
    if v >= 10_000.0 {
        format!("{:.0}K", v / 1000.0)
    } else if v >= 10.0 || v == 0.0 {
        format!("{v:.0}")
    } else {
        format!("{v:.1}")
    }
}

/// 5x7 glyphs, one byte per row (low five bits, left to right); unknown characters blank.
fn glyph(c: char) -> [u8; 7] {
    match c {
        '0' => [0x0E, 0x11, 0x13, 0x15, 0x19, 0x11, 0x0E],
        '1' => [0x04, 0x0C, 0x04, 0x04, 0x04, 0x04, 0x0E],
        '2' => [0x0E, 0x11, 0x01, 0x02, 0x04, 0x08, 0x1F],
        '3' => [0x1F, 0x02, 0x04, 0x02, 0x01, 0x11, 0x0E],
        '4' => [0x02, 0x06, 0x0A, 0x12, 0x1F, 0x02, 0x02],
        '5' => [0x1F, 0x10, 0x1E, 0x01, 0x01, 0x11, 0x0E],
        '6' => [0x06, 0x08, 0x10, 0x1E, 0x11, 0x11, 0x0E],
        '7' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x08, 0x08],
        '8' => [0x0E, 0x11, 0x11, 0x0E, 0x11, 0x11, 0x0E],
        '9' => [0x0E, 0x11, 0x11, 0x0F, 0x01, 0x02, 0x0C],
        'A' => [0x0E, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'B' => [0x1E, 0x11, 0x11, 0x1E, 0x11, 0x11, 0x1E],
        'C' => [0x0E, 0x11, 0x10, 0x10, 0x10, 0x11, 0x0E],
        'D' => [0x1C, 0x12, 0x11, 0x11, 0x11, 0x12, 0x1C],
        'E' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x1F],
        'F' => [0x1F, 0x10, 0x10, 0x1E, 0x10, 0x10, 0x10],
        'G' => [0x0E, 0x11, 0x10, 0x17, 0x11, 0x11, 0x0F],
        'H' => [0x11, 0x11, 0x11, 0x1F, 0x11, 0x11, 0x11],
        'I' => [0x0E, 0x04, 0x04, 0x04, 0x04, 0x04, 0x0E],
        'J' => [0x07, 0x02, 0x02, 0x02, 0x02, 0x12, 0x0C],
        'K' => [0x11, 0x12, 0x14, 0x18, 0x14, 0x12, 0x11],
        'L' => [0x10, 0x10, 0x10, 0x10, 0x10, 0x10, 0x1F],
        'M' => [0x11, 0x1B, 0x15, 0x15, 0x11, 0x11, 0x11],
        'N' => [0x11, 0x11, 0x19, 0x15, 0x13, 0x11, 0x11],
        'O' => [0x0E, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'P' => [0x1E, 0x11, 0x11, 0x1E, 0x10, 0x10, 0x10],
        'Q' => [0x0E, 0x11, 0x11, 0x11, 0x15, 0x12, 0x0D],
        'R' => [0x1E, 0x11, 0x11, 0x1E, 0x14, 0x12, 0x11],
        'S' => [0x0F, 0x10, 0x10, 0x0E, 0x01, 0x01, 0x1E],
        'T' => [0x1F, 0x04, 0x04, 0x04, 0x04, 0x04, 0x04],
        'U' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x11, 0x0E],
        'V' => [0x11, 0x11, 0x11, 0x11, 0x11, 0x0A, 0x04],
        'W' => [0x11, 0x11, 0x11, 0x15, 0x15, 0x15, 0x0A],
        'X' => [0x11, 0x11, 0x0A, 0x04, 0x0A, 0x11, 0x11],
        'Y' => [0x11, 0x11, 0x11, 0x0A, 0x04, 0x04, 0x04],
        'Z' => [0x1F, 0x01, 0x02, 0x04, 0x08, 0x10, 0x1F],
        '.' => [0, 0, 0, 0, 0, 0x0C, 0x0C],
        ',' => [0, 0, 0, 0, 0x0C, 0x04, 0x08],
        ':' => [0, 0x0C, 0x0C, 0, 0x0C, 0x0C, 0],
        '-' => [0, 0, 0, 0x1F, 0, 0, 0],
        '/' => [0, 0x01, 0x02, 0x04, 0x08, 0x10, 0],
        '%' => [0x18, 0x19, 0x02, 0x04, 0x08, 0x13, 0x03],
        '(' => [0x02, 0x04, 0x08, 0x08, 0x08, 0x04, 0x02],
        ')' => [0x08, 0x04, 0x02, 0x02, 0x02, 0x04, 0x08],
        '=' => [0, 0, 0x1F, 0, 0x1F, 0, 0],
        '+' => [0, 0x04, 0x04, 0x1F, 0x04, 0x04, 0],
        _ => [0; 7],
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn writes_a_png_with_the_expected_size() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("c.png");
        let panel = super::Panel {
            title: "TURNOUT",
            y_label: "BALLOTS",
            series: vec![super::Series { name: "CAST", color: [20, 90, 200], points: vec![(0.0, 0.0), (10.0, 42.0)] }],
        };
        super::write_png(&path, "SECONDS", 10.0, &[panel]).unwrap();
        let decoder = png::Decoder::new(std::io::BufReader::new(std::fs::File::open(&path).unwrap()));
        let reader = decoder.read_info().unwrap();
        assert_eq!((reader.info().width, reader.info().height), (1000, 320));
    }
}
