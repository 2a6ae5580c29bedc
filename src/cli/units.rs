//! Quantities on the command line: sizes (`64MiB`), durations (`2.3s`,
//! `150ms`), bandwidths (`10Gbit`) and rates (`1%`), parsed into numbers
//! with one sentence when they do not parse.

fn split_number(s: &str) -> (&str, &str) {
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == '.'))
        .unwrap_or(s.len());
    (&s[..end], s[end..].trim())
}

fn number(digits: &str, whole: &str) -> Result<f64, String> {
    digits
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{whole:?} does not start with a number"))
}

fn to_u64(value: f64, whole: &str) -> Result<u64, String> {
    if value < 0.0 || value >= u64::MAX as f64 {
        return Err(format!("{whole:?} is out of range"));
    }
    Ok(value.round() as u64)
}

/// Parses a size: bytes, or a number with a KiB, MiB, GiB or TiB suffix
/// (K, M, G, T accepted as the same binary units).
pub fn parse_size(s: &str) -> Result<u64, String> {
    let (digits, unit) = split_number(s.trim());
    let value = number(digits, s)?;
    let scale: u64 = match unit.to_ascii_lowercase().as_str() {
        "" | "b" => 1,
        "k" | "kib" => 1 << 10,
        "m" | "mib" => 1 << 20,
        "g" | "gib" => 1 << 30,
        "t" | "tib" => 1 << 40,
        _ => {
            return Err(format!(
                "unknown size unit in {s:?} (use KiB, MiB, GiB or TiB)"
            ))
        }
    };
    to_u64(value * scale as f64, s)
}

/// Parses a bandwidth into bytes per second: bits (`10Gbit`, `100Mbit/s`,
/// `1Gbps`, decimal units) or bytes (`1.25GB/s` decimal, `500MiB/s` binary);
/// a bare number is bytes per second.
pub fn parse_bandwidth(s: &str) -> Result<u64, String> {
    let (digits, unit) = split_number(s.trim());
    let value = number(digits, s)?;
    let unit = unit.trim_end_matches("/s").trim_end_matches("ps");
    let bytes_per_s = match unit {
        "" | "B" => value,
        "bit" | "b" => value / 8.0,
        "Kbit" | "kbit" | "Kb" | "kb" => value * 1e3 / 8.0,
        "Mbit" | "mbit" | "Mb" | "mb" => value * 1e6 / 8.0,
        "Gbit" | "gbit" | "Gb" | "gb" => value * 1e9 / 8.0,
        "KB" | "kB" => value * 1e3,
        "MB" => value * 1e6,
        "GB" => value * 1e9,
        "KiB" => value * 1024.0,
        "MiB" => value * 1024.0 * 1024.0,
        "GiB" => value * 1024.0 * 1024.0 * 1024.0,
        _ => {
            return Err(format!(
                "unknown bandwidth unit in {s:?} (use e.g. 10Gbit, 100Mbit, 1.25GB/s or 500MiB/s)"
            ))
        }
    };
    let v = to_u64(bytes_per_s, s)?;
    if v == 0 {
        return Err(format!("bandwidth {s:?} is zero"));
    }
    Ok(v)
}

/// Parses a duration into nanoseconds: a number with ns, us (or µs), ms or s.
pub fn parse_duration(s: &str) -> Result<u64, String> {
    let (digits, unit) = split_number(s.trim());
    let value = number(digits, s)?;
    let scale = match unit {
        "ns" => 1.0,
        "us" | "µs" => 1e3,
        "ms" => 1e6,
        "s" => 1e9,
        _ => {
            return Err(format!(
                "unknown duration unit in {s:?} (use ns, us, ms or s)"
            ))
        }
    };
    to_u64(value * scale, s)
}

/// Parses a rate: a fraction from 0 to 1 (`0.01`) or a percentage (`1%`).
pub fn parse_rate(s: &str) -> Result<f64, String> {
    let t = s.trim();
    let (digits, percent) = match t.strip_suffix('%') {
        Some(d) => (d.trim(), true),
        None => (t, false),
    };
    let v = digits
        .parse::<f64>()
        .ok()
        .filter(|v| v.is_finite())
        .ok_or_else(|| format!("{s:?} is not a rate (use e.g. 0.01 or 1%)"))?;
    let v = if percent { v / 100.0 } else { v };
    if !(0.0..=1.0).contains(&v) {
        return Err(format!("rate {s:?} is not between 0 and 1 (0% and 100%)"));
    }
    Ok(v)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes() {
        assert_eq!(parse_size("1GiB"), Ok(1 << 30));
        assert_eq!(parse_size("512MiB"), Ok(512 << 20));
        assert_eq!(parse_size("64 KiB"), Ok(64 << 10));
        assert_eq!(parse_size("1.5g"), Ok(3 << 29));
        assert_eq!(parse_size("4096"), Ok(4096));
        assert!(parse_size("1GB").unwrap_err().contains("GiB"));
        assert!(parse_size("lots").is_err());
    }

    #[test]
    fn bandwidths() {
        assert_eq!(parse_bandwidth("10Gbit"), Ok(1_250_000_000));
        assert_eq!(parse_bandwidth("100Mbit/s"), Ok(12_500_000));
        assert_eq!(parse_bandwidth("1Gbps"), Ok(125_000_000));
        assert_eq!(parse_bandwidth("1.25GB/s"), Ok(1_250_000_000));
        assert_eq!(parse_bandwidth("500MiB/s"), Ok(500 << 20));
        assert_eq!(parse_bandwidth("1000"), Ok(1000));
        assert!(parse_bandwidth("0Gbit").is_err());
        assert!(parse_bandwidth("10 furlongs").is_err());
    }

    #[test]
    fn rates() {
        assert_eq!(parse_rate("0.01"), Ok(0.01));
        assert_eq!(parse_rate("2.5%"), Ok(0.025));
        assert_eq!(parse_rate(" 1 "), Ok(1.0));
        assert!(parse_rate("150%").unwrap_err().contains("between 0 and 1"));
        assert!(parse_rate("-0.1").is_err());
        assert!(parse_rate("NaN").is_err());
        assert!(parse_rate("often").is_err());
    }
}
