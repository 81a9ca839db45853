//! Bar charts drawn on the server as SVG (the usage pages): no script, nothing fetched, every
//! label escaped, sized by the data's count (at most [`MAX_BARS`] bars). It follows the page's
//! colours (`currentColor`), so it reads in light and dark; its words and numbers are in the
//! reader's language.

use sambung_i18n::{text, Locale};

use crate::escape;

/// The most bars one chart draws (the rest are summed into "others").
pub const MAX_BARS: usize = 60;

/// One bar: its label (under or beside it) and its value.
#[derive(Debug, Clone, PartialEq)]
pub struct Bar {
    pub label: String,
    pub value: f64,
}

/// The colours a chart is drawn in: the device's theme, or the one the user chose.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Theme {
    System,
    Light,
    Dark,
}

impl Theme {
    /// The text colour rule of the chart's own stylesheet.
    fn style(self) -> &'static str {
        match self {
            Theme::System => {
                "svg{color:#1d1f23}@media (prefers-color-scheme: dark){svg{color:#e6e7ea}}"
            }
            Theme::Light => "svg{color:#1d1f23}",
            Theme::Dark => "svg{color:#e6e7ea}",
        }
    }
}

/// A horizontal bar chart: one row per bar, its label, its bar and its value (`unit` after
/// it), titled `title`.
pub fn bar_chart(locale: Locale, theme: Theme, title: &str, unit: &str, bars: &[Bar]) -> String {
    let mut rows: Vec<Bar> = bars.iter().take(MAX_BARS).cloned().collect();
    if bars.len() > MAX_BARS {
        let rest: f64 = bars[MAX_BARS..].iter().map(|b| b.value).sum();
        rows.push(Bar {
            label: text(locale, "chart.others", &[("n", &(bars.len() - MAX_BARS))]),
            value: rest,
        });
    }
    let (width, row_height, label_width, value_width) = (640.0, 22.0, 200.0, 110.0);
    let top = 34.0;
    let height = top + row_height * rows.len().max(1) as f64 + 10.0;
    let max = rows
        .iter()
        .map(|b| b.value)
        .filter(|v| v.is_finite())
        .fold(0.0_f64, f64::max);
    let span = width - label_width - value_width - 10.0;
    let mut svg = format!(
        "<svg xmlns=\"http://www.w3.org/2000/svg\" viewBox=\"0 0 {width} {height}\" width=\"{width}\" height=\"{height}\" role=\"img\" aria-label=\"{title}\" font-family=\"system-ui, sans-serif\" font-size=\"12\" fill=\"currentColor\">\
         <style>{style}</style>\
         <title>{title}</title>\
         <text x=\"0\" y=\"18\" font-size=\"14\" font-weight=\"600\">{title}</text>",
        title = escape(title),
        style = theme.style(),
    );
    if rows.is_empty() {
        svg.push_str(&format!(
            "<text x=\"0\" y=\"{}\" opacity=\"0.7\">{}</text>",
            top + 14.0,
            escape(&text(locale, "chart.empty", &[]))
        ));
    }
    for (i, bar) in rows.iter().enumerate() {
        let y = top + row_height * i as f64;
        let value = if bar.value.is_finite() {
            bar.value.max(0.0)
        } else {
            0.0
        };
        let length = if max > 0.0 { span * value / max } else { 0.0 };
        let label: String = bar.label.chars().take(32).collect();
        svg.push_str(&format!(
            "<text x=\"{lx}\" y=\"{ty}\" text-anchor=\"end\">{label}</text>\
             <rect x=\"{bx}\" y=\"{ry}\" width=\"{length:.1}\" height=\"{bh}\" rx=\"2\" fill=\"#3b82f6\"/>\
             <text x=\"{vx:.1}\" y=\"{ty}\">{value} {unit}</text>",
            lx = label_width - 8.0,
            ty = y + 14.0,
            label = escape(&label),
            bx = label_width,
            ry = y + 3.0,
            bh = row_height - 6.0,
            vx = label_width + length + 6.0,
            value = escape(&format_value(locale, value)),
            unit = escape(unit),
        ));
    }
    svg.push_str("</svg>");
    svg
}

/// A value for people: whole numbers with thousands separated, small ones with decimals, as
/// the language writes them (1,234.5 in English, 1.234,5 in Indonesian).
fn format_value(locale: Locale, value: f64) -> String {
    let (thousands, decimal) = match locale {
        Locale::En => (',', "."),
        Locale::Id => ('.', ","),
    };
    if value.fract() != 0.0 && value < 100.0 {
        return format!("{value:.2}").replace('.', decimal);
    }
    let whole = format!("{:.0}", value);
    let mut out = String::new();
    for (i, c) in whole.chars().enumerate() {
        if i > 0 && (whole.len() - i) % 3 == 0 {
            out.push(thousands);
        }
        out.push(c);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn labels_are_text_never_markup() {
        let svg = bar_chart(
            Locale::En,
            Theme::Light,
            "Tokens <by> model",
            "tokens",
            &[Bar {
                label: "<script>alert(1)</script>".into(),
                value: 1234.0,
            }],
        );
        assert!(!svg.contains("<script>"), "{svg}");
        assert!(svg.contains("&lt;script&gt;"));
        assert!(svg.contains("1,234 tokens"));
        assert!(svg.starts_with("<svg") && svg.ends_with("</svg>"));
    }

    #[test]
    fn many_bars_are_bounded_and_odd_values_drawn_as_nothing() {
        let bars: Vec<Bar> = (0..500)
            .map(|i| Bar {
                label: format!("day {i}"),
                value: if i == 3 { f64::NAN } else { i as f64 },
            })
            .collect();
        let svg = bar_chart(Locale::En, Theme::System, "t", "u", &bars);
        assert_eq!(svg.matches("<rect").count(), MAX_BARS + 1);
        assert!(svg.contains("440 others"));
        assert!(!svg.contains("NaN"));
        assert!(
            bar_chart(Locale::En, Theme::System, "t", "u", &[]).contains("Nothing in this period")
        );
    }

    #[test]
    fn the_chart_speaks_its_readers_language() {
        let bars: Vec<Bar> = (0..62)
            .map(|i| Bar {
                label: format!("{i}"),
                value: 1234.5 + f64::from(i),
            })
            .collect();
        let svg = bar_chart(Locale::Id, Theme::Dark, "t", "token", &bars);
        assert!(svg.contains("1.234 token"), "{svg}");
        assert!(svg.contains("2 lainnya"), "{svg}");
        assert!(bar_chart(Locale::Id, Theme::System, "t", "u", &[])
            .contains("Tidak ada apa pun pada periode ini"));
        assert_eq!(format_value(Locale::Id, 0.5), "0,50");
        // The user's dark theme, whatever the device prefers.
        assert!(svg.contains("<style>svg{color:#e6e7ea}</style>"), "{svg}");
        assert_eq!(format_value(Locale::En, 0.5), "0.50");
    }
}
