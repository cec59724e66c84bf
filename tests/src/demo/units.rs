//! Numbers as people read them: `1.50 M`, `1,450 ns`, `0.4 ms`.

/// Packets per second: `1.50 M`, `50.0 k`, `900`.
pub fn pps(value: f64) -> String {
    if value >= 1e6 {
        format!("{:.2} M", value / 1e6)
    } else if value >= 1e3 {
        format!("{:.1} k", value / 1e3)
    } else {
        format!("{value:.0}")
    }
}

/// Requests per second.
pub fn rate(value: f64) -> String {
    format!("{value:.0}")
}

/// `0.4 ms`, `210 ms`, `-`.
pub fn millis(value: Option<f64>) -> String {
    match value {
        Some(ms) if ms < 10.0 => format!("{ms:.1} ms"),
        Some(ms) => format!("{} ms", thousands(ms.round() as u64)),
        None => "-".into(),
    }
}

/// `1,450 ns`, `-`.
pub fn nanos(value: Option<f64>) -> String {
    value.map_or_else(
        || "-".into(),
        |ns| format!("{} ns", thousands(ns.round() as u64)),
    )
}

/// `1234567` as `1,234,567`.
pub fn thousands(value: u64) -> String {
    let digits = value.to_string();
    let mut out = String::new();
    for (index, digit) in digits.chars().enumerate() {
        if index > 0 && (digits.len() - index).is_multiple_of(3) {
            out.push(',');
        }
        out.push(digit);
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn numbers_read_well() {
        assert_eq!(thousands(1_234_567), "1,234,567");
        assert_eq!(thousands(999), "999");
        assert_eq!(pps(1_500_000.0), "1.50 M");
        assert_eq!(pps(50_000.0), "50.0 k");
        assert_eq!(millis(Some(0.42)), "0.4 ms");
        assert_eq!(millis(Some(1234.0)), "1,234 ms");
        assert_eq!(nanos(None), "-");
    }
}
