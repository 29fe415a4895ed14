//! What the commands print: a table or text for people, one JSON document with `--json`.

use std::io::{self, Write};

use serde::Serialize;

use crate::Error;

/// Where a command writes its result, and in which form.
pub struct Output<'a> {
    json: bool,
    out: Box<dyn Write + Send + 'a>,
}

impl std::fmt::Debug for Output<'_> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Output")
            .field("json", &self.json)
            .finish_non_exhaustive()
    }
}

impl<'a> Output<'a> {
    /// Output to `out`: one JSON document when `json`, text for people otherwise.
    pub fn new(json: bool, out: Box<dyn Write + Send + 'a>) -> Output<'a> {
        Output { json, out }
    }

    /// True when the result is to be JSON.
    #[must_use]
    pub fn is_json(&self) -> bool {
        self.json
    }

    /// Writes `report` as pretty JSON when the output is JSON, or what `human` writes
    /// otherwise.
    ///
    /// # Errors
    /// [`Error::Output`] when the output cannot be written.
    pub fn emit<T: Serialize>(
        &mut self,
        report: &T,
        human: impl FnOnce(&mut dyn Write) -> io::Result<()>,
    ) -> Result<(), Error> {
        if self.json {
            self.json_line(report, true)
        } else {
            human(&mut *self.out).map_err(Error::Output)?;
            self.out.flush().map_err(Error::Output)
        }
    }

    /// Writes `value` as one JSON document followed by a line break, pretty-printed when
    /// `pretty` (one line otherwise: JSON lines for streamed output).
    ///
    /// # Errors
    /// [`Error::Output`] when the output cannot be written.
    pub fn json_line<T: Serialize>(&mut self, value: &T, pretty: bool) -> Result<(), Error> {
        let written = if pretty {
            serde_json::to_writer_pretty(&mut self.out, value)
        } else {
            serde_json::to_writer(&mut self.out, value)
        };
        written.map_err(|e| Error::Output(io::Error::other(e)))?;
        self.out.write_all(b"\n").map_err(Error::Output)?;
        self.out.flush().map_err(Error::Output)
    }

    /// The writer, given back.
    #[must_use]
    pub fn into_inner(self) -> Box<dyn Write + Send + 'a> {
        self.out
    }

    /// The writer itself, for text streamed line by line.
    pub fn writer(&mut self) -> &mut dyn Write {
        &mut *self.out
    }
}

/// A plain-text table: a header row and rows, columns padded to their widest cell.
#[derive(Debug, Default)]
pub(crate) struct Table {
    rows: Vec<Vec<String>>,
    right: Vec<bool>,
}

impl Table {
    /// A table with these column headers; columns whose header is in `right_aligned` (numbers)
    /// are aligned right.
    pub(crate) fn new(headers: &[&str], right_aligned: &[&str]) -> Table {
        Table {
            rows: vec![headers.iter().map(|h| (*h).to_owned()).collect()],
            right: headers.iter().map(|h| right_aligned.contains(h)).collect(),
        }
    }

    pub(crate) fn row(&mut self, cells: Vec<String>) {
        self.rows.push(cells);
    }

    pub(crate) fn write(&self, out: &mut dyn Write) -> io::Result<()> {
        let columns = self.right.len();
        let mut widths = vec![0; columns];
        for row in &self.rows {
            for (i, cell) in row.iter().enumerate().take(columns) {
                widths[i] = widths[i].max(cell.chars().count());
            }
        }
        for row in &self.rows {
            let mut line = String::new();
            for (i, cell) in row.iter().enumerate().take(columns) {
                if i > 0 {
                    line.push_str("  ");
                }
                let pad = widths[i] - cell.chars().count();
                let last = i + 1 == columns;
                if self.right[i] {
                    line.push_str(&" ".repeat(pad));
                    line.push_str(cell);
                } else {
                    line.push_str(cell);
                    if !last {
                        line.push_str(&" ".repeat(pad));
                    }
                }
            }
            writeln!(out, "{}", line.trim_end())?;
        }
        Ok(())
    }
}

/// `bytes` for people: `1.4 MiB`.
pub(crate) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 5] = ["B", "KiB", "MiB", "GiB", "TiB"];
    let mut value = bytes as f64;
    let mut unit = 0;
    while value >= 1024.0 && unit + 1 < UNITS.len() {
        value /= 1024.0;
        unit += 1;
    }
    if unit == 0 {
        format!("{bytes} B")
    } else {
        format!("{value:.1} {}", UNITS[unit])
    }
}

/// JSON text indented for people, every token kept exactly as written (key order, number
/// spelling, string escapes): only whitespace between tokens changes. `indent` is the number of
/// levels the whole value starts at (two spaces each). Text that is not JSON comes out with
/// line breaks in odd places but nothing lost.
#[must_use]
pub fn pretty_json(text: &str, indent: usize) -> String {
    let mut out = String::with_capacity(text.len() * 2);
    let mut depth = indent;
    let mut in_string = false;
    let mut escaped = false;
    let mut chars = text.trim().chars().peekable();
    let newline = |out: &mut String, depth: usize| {
        out.push('\n');
        out.push_str(&"  ".repeat(depth));
    };
    while let Some(c) = chars.next() {
        if in_string {
            out.push(c);
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == '"' {
                in_string = false;
            }
            continue;
        }
        match c {
            '"' => {
                in_string = true;
                out.push(c);
            }
            '{' | '[' => {
                out.push(c);
                // An empty object or array stays on one line.
                while chars.peek().is_some_and(|c| c.is_whitespace()) {
                    chars.next();
                }
                let close = if c == '{' { '}' } else { ']' };
                if chars.peek() == Some(&close) {
                    if let Some(close) = chars.next() {
                        out.push(close);
                    }
                } else {
                    depth += 1;
                    newline(&mut out, depth);
                }
            }
            '}' | ']' => {
                depth = depth.saturating_sub(1);
                newline(&mut out, depth);
                out.push(c);
            }
            ',' => {
                out.push(c);
                newline(&mut out, depth);
            }
            ':' => out.push_str(": "),
            c if c.is_whitespace() => {}
            c => out.push(c),
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pretty_json_keeps_every_token_and_parses_to_the_same_value() {
        let text = r#"{"b":1.50,"a":[1, 2,{}],"s":"x,{y}:\"z\"","e":[],"n":null}"#;
        let pretty = pretty_json(text, 0);
        assert_eq!(
            pretty,
            "{\n  \"b\": 1.50,\n  \"a\": [\n    1,\n    2,\n    {}\n  ],\n  \"s\": \"x,{y}:\\\"z\\\"\",\n  \"e\": [],\n  \"n\": null\n}"
        );
        let a: serde_json::Value = serde_json::from_str(text).unwrap();
        let b: serde_json::Value = serde_json::from_str(&pretty).unwrap();
        assert_eq!(a, b);
    }

    #[test]
    fn tables_pad_columns_and_align_numbers_right() {
        let mut table = Table::new(&["type", "events"], &["events"]);
        table.row(vec!["CourseCreated".into(), "7".into()]);
        table.row(vec!["X".into(), "1200".into()]);
        let mut out = Vec::new();
        table.write(&mut out).unwrap();
        assert_eq!(
            String::from_utf8(out).unwrap(),
            "type           events\nCourseCreated       7\nX                1200\n"
        );
    }

    #[test]
    fn bytes_read_as_people_say_them() {
        assert_eq!(human_bytes(512), "512 B");
        assert_eq!(human_bytes(1536), "1.5 KiB");
        assert_eq!(human_bytes(5 << 30), "5.0 GiB");
    }
}
