//! Number and date formatting shared by the report's renderings.

/// Returns `value` rounded, with thin separators every three digits: 12,345.
pub fn thousands(value: f64) -> String {
    if !value.is_finite() {
        return "-".to_owned();
    }
    let rounded = value.round().abs() as u64;
    let digits = rounded.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    if value < -0.5 {
        out.insert(0, '-');
    }
    out
}

/// Returns microseconds as milliseconds with two decimals.
pub fn ms(us: f64) -> String {
    format!("{:.2}", us / 1000.0)
}

/// Returns bytes as MiB with one decimal.
pub fn mib(bytes: u64) -> String {
    format!("{:.1}", bytes as f64 / (1024.0 * 1024.0))
}

/// Returns `value / base` as "0.52x", or "-" when it means nothing.
pub fn ratio(value: f64, base: f64) -> String {
    if base > 0.0 && value.is_finite() {
        format!("{:.2}x", value / base)
    } else {
        "-".to_owned()
    }
}

/// Returns `text` followed by the ratio of `value` to `base` in
/// parentheses, unless `is_base` (polis's own row).
pub fn with_ratio(text: String, value: f64, base: f64, is_base: bool) -> String {
    if is_base {
        text
    } else {
        format!("{text} ({})", ratio(value, base))
    }
}

/// Returns the UTC calendar date and time of a Unix time: `2025-01-31 23:59:07 UTC`.
pub fn utc(unix_s: u64) -> String {
    let (year, month, day) = civil_from_days((unix_s / 86_400) as i64);
    let seconds = unix_s % 86_400;
    format!(
        "{year:04}-{month:02}-{day:02} {:02}:{:02}:{:02} UTC",
        seconds / 3600,
        seconds / 60 % 60,
        seconds % 60
    )
}

/// Returns a Unix time as a directory name: `20250131-235907`.
pub fn utc_compact(unix_s: u64) -> String {
    utc(unix_s)
        .trim_end_matches(" UTC")
        .replace(['-', ':'], "")
        .replace(' ', "-")
}

/// Converts days since 1970-01-01 to (year, month, day) in the proleptic
/// Gregorian calendar (the "days from civil" algorithm, inverted: eras
/// of 400 years, years starting in March so the leap day comes last).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let day_of_era = z.rem_euclid(146_097);
    let year_of_era =
        (day_of_era - day_of_era / 1460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_from_march = (5 * day_of_year + 2) / 153;
    let day = (day_of_year - (153 * month_from_march + 2) / 5 + 1) as u32;
    let month = if month_from_march < 10 {
        month_from_march + 3
    } else {
        month_from_march - 9
    } as u32;
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    (year, month, day)
}

/// Escapes text for HTML.
pub fn html_escape(text: &str) -> String {
    text.replace('&', "&amp;")
        .replace('<', "&lt;")
        .replace('>', "&gt;")
        .replace('"', "&quot;")
}

/// Escapes a table cell for markdown.
pub fn md_cell(text: &str) -> String {
    text.replace('|', "\\|").replace('\n', " ")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers() {
        assert_eq!(thousands(0.0), "0");
        assert_eq!(thousands(999.4), "999");
        assert_eq!(thousands(1234.5), "1,235");
        assert_eq!(thousands(1_234_567.0), "1,234,567");
        assert_eq!(thousands(-4321.0), "-4,321");
        assert_eq!(ms(1234.0), "1.23");
        assert_eq!(mib(3 * 1024 * 1024 / 2), "1.5");
        assert_eq!(ratio(1.0, 4.0), "0.25x");
        assert_eq!(ratio(1.0, 0.0), "-");
        assert_eq!(with_ratio("9".into(), 9.0, 3.0, false), "9 (3.00x)");
        assert_eq!(with_ratio("9".into(), 9.0, 3.0, true), "9");
    }

    #[test]
    fn dates() {
        assert_eq!(utc(0), "1970-01-01 00:00:00 UTC");
        assert_eq!(utc(951_782_400), "2000-02-29 00:00:00 UTC");
        assert_eq!(utc(1_709_251_199), "2024-02-29 23:59:59 UTC");
        assert_eq!(utc(1_735_689_600), "2025-01-01 00:00:00 UTC");
        assert_eq!(utc_compact(1_709_251_199), "20240229-235959");
    }

    #[test]
    fn escaping() {
        assert_eq!(html_escape("<a & \"b\">"), "&lt;a &amp; &quot;b&quot;&gt;");
        assert_eq!(md_cell("a|b\nc"), "a\\|b c");
    }
}
