//! A prefix as a Prometheus label value: the control plane's `/metrics` and the workers' route
//! histograms both label series with prefixes, which may hold `"` or `\`. Pure.

/// Appends `value` escaped for a label value: `\` -> `\\`, `"` -> `\"`, newline -> `\n`.
pub fn escape_label(value: &str, out: &mut String) {
    for c in value.chars() {
        match c {
            '\\' => out.push_str("\\\\"),
            '"' => out.push_str("\\\""),
            '\n' => out.push_str("\\n"),
            c => out.push(c),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn label_values_are_escaped() {
        let mut out = String::new();
        escape_label("/a\"b\\c\nd", &mut out);
        assert_eq!(out, "/a\\\"b\\\\c\\nd");
    }
}
