//! Line charts drawn by the bench itself into a PNG: panels side by side,
//! each with its own axes, grid and series. Tick labels are numbers in a
//! small built-in pixel font (digits, `.`, `k`); what the axes and colours
//! mean is said where the picture is shown.

mod png;

/// Colours of the palette, by index.
const WHITE: u8 = 0;
const AXIS: u8 = 1;
const GRID: u8 = 2;
const TEXT: u8 = 3;
const PALETTE: [[u8; 3]; 8] = [
    [255, 255, 255],
    [40, 40, 40],
    [225, 225, 225],
    [90, 90, 90],
    [31, 119, 180], // blue
    [255, 127, 14], // orange
    [44, 160, 44],  // green
    [214, 39, 40],  // red
];

/// One chart panel: x positions are the indices of `x_ticks` (evenly
/// spaced, whatever their values), each series one y value per tick.
#[derive(Debug, Clone)]
pub struct Panel {
    /// Labels of the x positions (numbers, shown as `1k`, `10k`…).
    pub x_ticks: Vec<f64>,
    /// `(colour, y values)`; colours 0..4 are blue, orange, green, red; a
    /// missing value is `None`.
    pub series: Vec<(usize, Vec<Option<f64>>)>,
}

const PANEL_W: usize = 320;
const PANEL_H: usize = 300;
const MARGIN_L: usize = 44;
const MARGIN_B: usize = 24;
const MARGIN_T: usize = 12;
const MARGIN_R: usize = 14;
const SCALE: usize = 2;

/// The panels side by side, as PNG bytes.
pub fn render(panels: &[Panel]) -> Vec<u8> {
    let width = PANEL_W * panels.len().max(1);
    let mut canvas = Canvas { width, height: PANEL_H, pixels: vec![WHITE; width * PANEL_H] };
    for (i, panel) in panels.iter().enumerate() {
        canvas.panel(i * PANEL_W, panel);
    }
    png::encode(width as u32, PANEL_H as u32, &canvas.pixels, &PALETTE)
}

struct Canvas {
    width: usize,
    height: usize,
    pixels: Vec<u8>,
}

// === impl Canvas ===

impl Canvas {
    fn panel(&mut self, left: usize, panel: &Panel) {
        let (x0, x1) = (left + MARGIN_L, left + PANEL_W - MARGIN_R);
        let (y0, y1) = (MARGIN_T, PANEL_H - MARGIN_B);
        let top = panel
            .series
            .iter()
            .flat_map(|(_, ys)| ys.iter().flatten())
            .fold(0.0f64, |a, &b| a.max(b));
        let (step, max) = nice_axis(top);
        // Horizontal grid with the y labels.
        let mut value = 0.0;
        while value <= max + step / 2.0 {
            let y = y1 - ((value / max) * (y1 - y0) as f64).round() as usize;
            self.hline(x0, x1, y, GRID);
            let label = number(value);
            let w = text_width(&label);
            self.text(x0.saturating_sub(w + 4), y.saturating_sub(5 * SCALE / 2), &label);
            value += step;
        }
        let n = panel.x_ticks.len().max(1);
        let x_at = |i: usize| {
            if n == 1 { (x0 + x1) / 2 } else { x0 + 12 + i * (x1 - x0 - 24) / (n - 1) }
        };
        for (i, &tick) in panel.x_ticks.iter().enumerate() {
            let x = x_at(i);
            self.vline(x, y0, y1, GRID);
            let label = number(tick);
            self.text(x.saturating_sub(text_width(&label) / 2), y1 + 6, &label);
        }
        self.hline(x0, x1, y1, AXIS);
        self.vline(x0, y0, y1, AXIS);
        for (colour, ys) in &panel.series {
            let colour = 4 + (*colour % 4) as u8;
            let points: Vec<(usize, usize)> = ys
                .iter()
                .enumerate()
                .filter_map(|(i, y)| {
                    let y = (*y)?;
                    Some((x_at(i), y1 - ((y / max) * (y1 - y0) as f64).round() as usize))
                })
                .collect();
            for pair in points.windows(2) {
                self.line(pair[0], pair[1], colour);
            }
            for &(x, y) in &points {
                self.square(x, y, 3, colour);
            }
        }
    }

    fn set(&mut self, x: usize, y: usize, colour: u8) {
        if x < self.width && y < self.height {
            self.pixels[y * self.width + x] = colour;
        }
    }

    fn hline(&mut self, x0: usize, x1: usize, y: usize, colour: u8) {
        for x in x0..=x1 {
            self.set(x, y, colour);
        }
    }

    fn vline(&mut self, x: usize, y0: usize, y1: usize, colour: u8) {
        for y in y0..=y1 {
            self.set(x, y, colour);
        }
    }

    fn square(&mut self, x: usize, y: usize, half: usize, colour: u8) {
        for dy in 0..=2 * half {
            for dx in 0..=2 * half {
                self.set((x + dx).saturating_sub(half), (y + dy).saturating_sub(half), colour);
            }
        }
    }

    /// A line two pixels thick.
    fn line(&mut self, from: (usize, usize), to: (usize, usize), colour: u8) {
        let steps = from.0.abs_diff(to.0).max(from.1.abs_diff(to.1)).max(1);
        for s in 0..=steps {
            let t = s as f64 / steps as f64;
            let x = (from.0 as f64 + (to.0 as f64 - from.0 as f64) * t).round() as usize;
            let y = (from.1 as f64 + (to.1 as f64 - from.1 as f64) * t).round() as usize;
            self.square(x, y, 1, colour);
        }
    }

    fn text(&mut self, x: usize, y: usize, text: &str) {
        let mut cursor = x;
        for c in text.chars() {
            let rows = glyph(c);
            for (row, bits) in rows.iter().enumerate() {
                for col in 0..3 {
                    if bits >> (2 - col) & 1 == 1 {
                        for d in 0..SCALE * SCALE {
                            let px = cursor + col * SCALE + d % SCALE;
                            let py = y + row * SCALE + d / SCALE;
                            self.set(px, py, TEXT);
                        }
                    }
                }
            }
            cursor += 4 * SCALE;
        }
    }
}

fn text_width(text: &str) -> usize {
    (text.chars().count() * 4).saturating_sub(1) * SCALE
}

/// A 3 × 5 glyph, one row of 3 bits per entry.
fn glyph(c: char) -> [u8; 5] {
    match c {
        '0' => [0b111, 0b101, 0b101, 0b101, 0b111],
        '1' => [0b010, 0b110, 0b010, 0b010, 0b111],
        '2' => [0b111, 0b001, 0b111, 0b100, 0b111],
        '3' => [0b111, 0b001, 0b111, 0b001, 0b111],
        '4' => [0b101, 0b101, 0b111, 0b001, 0b001],
        '5' => [0b111, 0b100, 0b111, 0b001, 0b111],
        '6' => [0b111, 0b100, 0b111, 0b101, 0b111],
        '7' => [0b111, 0b001, 0b010, 0b010, 0b010],
        '8' => [0b111, 0b101, 0b111, 0b101, 0b111],
        '9' => [0b111, 0b101, 0b111, 0b001, 0b111],
        '.' => [0b000, 0b000, 0b000, 0b000, 0b010],
        'k' => [0b100, 0b101, 0b110, 0b101, 0b101],
        _ => [0; 5],
    }
}

/// A tick label: `1k`, `2.5k`, `150`, `0.5`.
fn number(value: f64) -> String {
    if value >= 1000.0 {
        let k = value / 1000.0;
        if (k - k.round()).abs() < 1e-9 { format!("{k:.0}k") } else { format!("{k:.1}k") }
    } else if (value - value.round()).abs() < 1e-9 {
        format!("{value:.0}")
    } else if value >= 1.0 {
        format!("{value:.1}")
    } else {
        format!("{value:.2}")
    }
}

/// A step of 1, 2 or 5 × 10ⁿ giving 4–6 grid lines up to at least `top`,
/// and the axis maximum.
fn nice_axis(top: f64) -> (f64, f64) {
    if top <= 0.0 || !top.is_finite() {
        return (1.0, 5.0);
    }
    let rough = top / 5.0;
    let magnitude = 10f64.powf(rough.log10().floor());
    let step = [1.0, 2.0, 5.0, 10.0]
        .iter()
        .map(|m| m * magnitude)
        .find(|s| *s >= rough)
        .unwrap_or(10.0 * magnitude);
    (step, (top / step).ceil().max(1.0) * step)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn axes_end_on_a_round_step_above_the_data() {
        assert_eq!(nice_axis(394.0), (100.0, 400.0));
        assert_eq!(nice_axis(1.3), (0.5, 1.5));
        assert_eq!(nice_axis(0.0), (1.0, 5.0));
    }

    #[test]
    fn labels_are_short() {
        assert_eq!(number(1000.0), "1k");
        assert_eq!(number(2500.0), "2.5k");
        assert_eq!(number(150.0), "150");
        assert_eq!(number(0.25), "0.25");
    }

    #[test]
    fn a_chart_is_a_png() {
        let panel = Panel {
            x_ticks: vec![1000.0, 10_000.0],
            series: vec![(0, vec![Some(20.0), Some(150.0)]), (1, vec![None, Some(3.0)])],
        };
        let png = render(&[panel.clone(), panel]);
        assert_eq!(&png[..8], b"\x89PNG\r\n\x1a\n");
    }
}
