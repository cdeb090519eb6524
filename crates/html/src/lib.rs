//! HTML for people, once: [`escape`], an escaping-by-default builder ([`Html`]) and the inline
//! SVG charts ([`column_chart`], [`row_chart`]) that the web console and fastblocks' static
//! report both draw.
//!
//! Escaping is the default: text and attribute values always go through [`escape`]; the only
//! way to write markup unescaped is [`Html::raw`], which takes a `&'static str` (markup written
//! in the source, never a value), or another [`Html`] built the same way.

use std::fmt::Write as _;

/// `&`, `<`, `>`, `"` and `'` as entities: safe in text and in quoted attributes.
pub fn escape(s: &str) -> String {
    let mut out = String::with_capacity(s.len());
    push_escaped(&mut out, s);
    out
}

fn push_escaped(out: &mut String, s: &str) {
    for c in s.chars() {
        match c {
            '&' => out.push_str("&amp;"),
            '<' => out.push_str("&lt;"),
            '>' => out.push_str("&gt;"),
            '"' => out.push_str("&quot;"),
            '\'' => out.push_str("&#39;"),
            c => out.push(c),
        }
    }
}

/// A fragment of HTML whose every value was escaped.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Html(String);

impl Html {
    pub fn new() -> Self {
        Self::default()
    }

    /// Markup written in the source (a literal), unescaped.
    pub fn raw(&mut self, markup: &'static str) -> &mut Self {
        self.0.push_str(markup);
        self
    }

    /// Text, escaped.
    pub fn text(&mut self, s: &str) -> &mut Self {
        push_escaped(&mut self.0, s);
        self
    }

    /// `<tag a="v" …>`: names are literals, values are escaped; a `None` value leaves the
    /// attribute out, an empty one writes a boolean attribute.
    pub fn open(&mut self, tag: &'static str, attrs: &[(&'static str, Option<&str>)]) -> &mut Self {
        self.0.push('<');
        self.0.push_str(tag);
        for (name, value) in attrs {
            let Some(value) = value else { continue };
            self.0.push(' ');
            self.0.push_str(name);
            if !value.is_empty() {
                self.0.push_str("=\"");
                push_escaped(&mut self.0, value);
                self.0.push('"');
            }
        }
        self.0.push('>');
        self
    }

    pub fn close(&mut self, tag: &'static str) -> &mut Self {
        self.0.push_str("</");
        self.0.push_str(tag);
        self.0.push('>');
        self
    }

    /// `<input type="hidden" name=… value=…>` (a form's fixed value; the value escaped).
    pub fn hidden(&mut self, name: &'static str, value: &str) -> &mut Self {
        self.open(
            "input",
            &[
                ("type", Some("hidden")),
                ("name", Some(name)),
                ("value", Some(value)),
            ],
        )
    }

    /// `<tag attrs>text</tag>`.
    pub fn el(
        &mut self,
        tag: &'static str,
        attrs: &[(&'static str, Option<&str>)],
        text: &str,
    ) -> &mut Self {
        self.open(tag, attrs).text(text).close(tag)
    }

    /// `<tag attrs>…</tag>` with the inside written by `inner`.
    pub fn wrap(
        &mut self,
        tag: &'static str,
        attrs: &[(&'static str, Option<&str>)],
        inner: impl FnOnce(&mut Html),
    ) -> &mut Self {
        self.open(tag, attrs);
        inner(self);
        self.close(tag)
    }

    /// Appends another fragment.
    pub fn append(&mut self, other: &Html) -> &mut Self {
        self.0.push_str(&other.0);
        self
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    pub fn into_string(self) -> String {
        self.0
    }
}

/// A vertical bar chart: one `<rect class="bar">` per entry, in order.
pub fn column_chart(title: &str, bars: &[(String, f64)]) -> Html {
    let (w, h, left, bottom, top) = (760.0, 220.0, 40.0, 30.0, 10.0);
    let plot_w = w - left - 10.0;
    let plot_h = h - bottom - top;
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max);
    let slot = plot_w / bars.len().max(1) as f64;
    let bar_w = (slot * 0.8).max(1.0);
    let mut svg = format!(
        "<svg class=\"chart\" role=\"img\" viewBox=\"0 0 {w} {h}\" width=\"100%\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title>{}</title>\n",
        escape(title)
    );
    let _ = writeln!(
        svg,
        "<line x1=\"{left}\" y1=\"{y}\" x2=\"{x2}\" y2=\"{y}\" stroke=\"#999\"/>\
         <text x=\"{tx}\" y=\"{ty}\" text-anchor=\"end\">{max}</text>\
         <text x=\"{tx}\" y=\"{y}\" text-anchor=\"end\">0</text>",
        y = top + plot_h,
        x2 = w - 10.0,
        tx = left - 4.0,
        ty = top + 10.0,
    );
    let label_every = bars.len().div_ceil(8).max(1);
    for (i, (label, value)) in bars.iter().enumerate() {
        let bh = if max > 0.0 { value / max * plot_h } else { 0.0 };
        let x = left + i as f64 * slot + (slot - bar_w) / 2.0;
        let _ = writeln!(
            svg,
            "<rect class=\"bar\" x=\"{x:.2}\" y=\"{:.2}\" width=\"{bar_w:.2}\" height=\"{bh:.2}\">\
             <title>{}: {value}</title></rect>",
            top + plot_h - bh,
            escape(label)
        );
        if i % label_every == 0 || i + 1 == bars.len() {
            let _ = writeln!(
                svg,
                "<text x=\"{:.2}\" y=\"{:.2}\" text-anchor=\"middle\">{}</text>",
                x + bar_w / 2.0,
                h - 10.0,
                escape(label)
            );
        }
    }
    svg.push_str("</svg>\n");
    Html(svg)
}

/// A horizontal bar chart with a label and a value per row.
pub fn row_chart(title: &str, bars: &[(String, f64)]) -> Html {
    let (w, row, left) = (760.0, 22.0, 180.0);
    let h = row * bars.len().max(1) as f64 + 10.0;
    let plot_w = w - left - 70.0;
    let max = bars.iter().map(|b| b.1).fold(0.0_f64, f64::max);
    let mut svg = format!(
        "<svg class=\"chart\" role=\"img\" viewBox=\"0 0 {w} {h}\" width=\"100%\" \
         xmlns=\"http://www.w3.org/2000/svg\"><title>{}</title>\n",
        escape(title)
    );
    for (i, (label, value)) in bars.iter().enumerate() {
        let y = 5.0 + i as f64 * row;
        let bw = if max > 0.0 { value / max * plot_w } else { 0.0 };
        let _ = writeln!(
            svg,
            "<text x=\"{:.2}\" y=\"{:.2}\" text-anchor=\"end\">{label}</text>\
             <rect class=\"bar\" x=\"{left}\" y=\"{y:.2}\" width=\"{bw:.2}\" height=\"{:.2}\">\
             <title>{label}: {value}</title></rect>\
             <text x=\"{:.2}\" y=\"{:.2}\">{value}</text>",
            left - 6.0,
            y + row * 0.65,
            row - 6.0,
            left + bw + 4.0,
            y + row * 0.65,
            label = escape(label),
        );
    }
    svg.push_str("</svg>\n");
    Html(svg)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn escaping_covers_markup_and_quotes() {
        assert_eq!(
            escape(r#"<script>alert("x&y")</script> 'q'"#),
            "&lt;script&gt;alert(&quot;x&amp;y&quot;)&lt;/script&gt; &#39;q&#39;"
        );
    }

    #[test]
    fn the_builder_escapes_text_and_attribute_values() {
        let evil = "\"><script>x</script>";
        let mut h = Html::new();
        h.wrap("p", &[("class", Some(evil)), ("hidden", None)], |h| {
            h.text(evil);
        })
        .open("input", &[("checked", Some(""))]);
        assert_eq!(
            h.as_str(),
            "<p class=\"&quot;&gt;&lt;script&gt;x&lt;/script&gt;\">&quot;&gt;&lt;script&gt;x&lt;/script&gt;</p><input checked>"
        );
    }

    #[test]
    fn charts_draw_one_bar_per_entry_and_escape_labels() {
        let bars = vec![
            ("<b>".to_string(), 2.0),
            ("empty".to_string(), 0.0),
            ("half".to_string(), 0.5),
        ];
        let svg = column_chart("t<", &bars);
        let svg = svg.as_str();
        assert_eq!(svg.matches("<rect class=\"bar\"").count(), 3);
        assert!(
            svg.contains("height=\"0.00\""),
            "a zero is a zero-height bar"
        );
        assert!(svg.contains("<title>t&lt;</title>"));
        assert!(svg.contains("&lt;b&gt;: 2</title>"));
        assert!(!svg.contains("<b>"));
        let rows = row_chart("r", &bars);
        assert_eq!(rows.as_str().matches("<rect class=\"bar\"").count(), 3);
        assert!(rows.as_str().contains(">0.5</text>"));
    }
}
