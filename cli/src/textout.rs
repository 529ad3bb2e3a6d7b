//! Terminal output shared by `report` and `reconcile`: aligned tables whose cells cannot carry
//! terminal escape sequences (audit records and CloudTrail events hold request-derived text).

use std::fmt::Write as _;

/// Printable on a terminal: control characters (escape sequences from a header value) shown
/// as `\u{..}`.
pub(crate) fn term(s: &str) -> String {
    s.chars()
        .flat_map(|c| {
            if c.is_control() {
                c.escape_unicode().collect::<Vec<_>>()
            } else {
                vec![c]
            }
        })
        .collect()
}

/// Rows as aligned columns, two spaces apart, indented by two: text left, numbers right, every
/// cell through [`term`].
pub(crate) fn table(header: &[&str], rows: &[Vec<String>]) -> String {
    let rows: Vec<Vec<String>> = rows
        .iter()
        .map(|row| row.iter().map(|c| term(c)).collect())
        .collect();
    let mut widths: Vec<usize> = header.iter().map(|h| h.chars().count()).collect();
    for row in &rows {
        for (w, cell) in widths.iter_mut().zip(row) {
            *w = (*w).max(cell.chars().count());
        }
    }
    let mut out = String::new();
    let mut line = |cells: &[String]| {
        let mut l = String::from("  ");
        for (i, cell) in cells.iter().enumerate() {
            let w = widths.get(i).copied().unwrap_or(0);
            let number = !cell.is_empty() && cell.chars().all(|c| c.is_ascii_digit());
            if i + 1 == cells.len() && !number {
                l.push_str(cell);
            } else if number {
                let _ = write!(l, "{cell:>w$}  ");
            } else {
                let _ = write!(l, "{cell:<w$}  ");
            }
        }
        out.push_str(l.trim_end());
        out.push('\n');
    };
    line(&header.iter().map(|h| h.to_string()).collect::<Vec<_>>());
    for row in &rows {
        line(row);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cells_are_aligned_numbers_right_and_escapes_neutralised() {
        let rows = vec![
            vec!["alice".to_string(), "7".to_string()],
            vec!["b\u{1b}[31m".to_string(), "1234".to_string()],
        ];
        let out = table(&["caller", "n"], &rows);
        assert!(!out.contains('\u{1b}'), "{out}");
        assert!(out.contains("b\\u{1b}[31m"), "{out}");
        let lines: Vec<&str> = out.lines().collect();
        assert_eq!(lines[1], format!("  alice{}7", " ".repeat(11)));
        assert_eq!(lines[2], "  b\\u{1b}[31m  1234");
    }
}
