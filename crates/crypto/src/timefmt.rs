//! The few RFC 3339 conversions the wire formats need, without a date-time dependency.

/// Formats seconds since the Unix epoch as `YYYY-MM-DDTHH:MM:SSZ`.
pub(crate) fn format_unix(secs: i64) -> String {
    let days = secs.div_euclid(86_400);
    let rem = secs.rem_euclid(86_400);
    let (y, m, d) = civil_from_days(days);
    format!(
        "{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}Z",
        rem / 3600,
        rem % 3600 / 60,
        rem % 60
    )
}

/// Days since 1970-01-01 to a proleptic Gregorian date (H. Hinnant's algorithm).
fn civil_from_days(days: i64) -> (i64, u32, u32) {
    let z = days + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    let y = yoe + era * 400 + i64::from(m <= 2);
    (y, m, d)
}

/// A parsed timestamp, kept in the wall-clock fields it was written with.
#[derive(Debug, PartialEq, Eq)]
pub(crate) struct Timestamp {
    date: (u32, u32, u32),
    time: (u32, u32, u32),
    /// Fraction digits as written (may be empty).
    fraction: String,
    /// Offset from UTC in minutes; `None` when the text had no zone (then UTC).
    offset: Option<i32>,
}

impl Timestamp {
    /// Parses the forms Go's YAML library resolves as timestamps: `2006-1-2`,
    /// `2006-1-2 15:4:5[.frac]` (UTC) and `2006-1-2T15:4:5[.frac](Z|±07:00)`, `t` allowed.
    pub(crate) fn parse(text: &str) -> Option<Self> {
        let (date, rest) = match text.find(['T', 't', ' ']) {
            Some(i) => (&text[..i], Some((text.as_bytes()[i], &text[i + 1..]))),
            None => (text, None),
        };
        let date = parse_triple(date, '-', 4)?;
        if !(1..=12).contains(&date.1) || !(1..=31).contains(&date.2) {
            return None;
        }
        let Some((sep, rest)) = rest else {
            return Some(Self {
                date,
                time: (0, 0, 0),
                fraction: String::new(),
                offset: None,
            });
        };
        let zone_at = rest.find(['Z', 'z', '+', '-']).unwrap_or(rest.len());
        let (clock, zone) = rest.split_at(zone_at);
        let (clock, fraction) = match clock.split_once('.') {
            Some((c, f)) if !f.is_empty() && f.bytes().all(|b| b.is_ascii_digit()) => (c, f),
            Some(_) => return None,
            None => (clock, ""),
        };
        let time = parse_triple(clock, ':', 2)?;
        if time.0 > 23 || time.1 > 59 || time.2 > 60 {
            return None;
        }
        let offset = match zone {
            "" if sep == b' ' => None,
            "" => return None,
            _ if sep == b' ' => return None,
            "Z" | "z" => Some(0),
            _ => {
                let sign = if zone.starts_with('-') { -1 } else { 1 };
                let (h, m) = zone[1..].split_once(':')?;
                if h.len() != 2 || m.len() != 2 {
                    return None;
                }
                let (h, m): (i32, i32) = (h.parse().ok()?, m.parse().ok()?);
                if h > 23 || m > 59 {
                    return None;
                }
                Some(sign * (h * 60 + m))
            }
        };
        Some(Self {
            date,
            time,
            fraction: fraction.to_owned(),
            offset,
        })
    }

    /// Go's `time.Format(time.RFC3339)`: whole seconds, `Z` for a zero offset.
    pub(crate) fn rfc3339(&self) -> String {
        self.format(false)
    }

    /// Go's `time.MarshalText` (RFC 3339 with nanoseconds, trailing zeros trimmed).
    pub(crate) fn rfc3339_nano(&self) -> String {
        self.format(true)
    }

    fn format(&self, nanos: bool) -> String {
        let (y, mo, d) = self.date;
        let (h, mi, s) = self.time;
        let mut out = format!("{y:04}-{mo:02}-{d:02}T{h:02}:{mi:02}:{s:02}");
        if nanos {
            let digits: String = self.fraction.chars().take(9).collect();
            let digits = digits.trim_end_matches('0');
            if !digits.is_empty() {
                out.push('.');
                out.push_str(digits);
            }
        }
        match self.offset.unwrap_or(0) {
            0 => out.push('Z'),
            off => {
                let sign = if off < 0 { '-' } else { '+' };
                let off = off.abs();
                out.push_str(&format!("{sign}{:02}:{:02}", off / 60, off % 60));
            }
        }
        out
    }
}

fn parse_triple(text: &str, sep: char, first_len: usize) -> Option<(u32, u32, u32)> {
    let mut parts = text.split(sep);
    let mut next = |max_len: usize, exact: bool| -> Option<u32> {
        let p = parts.next()?;
        let ok_len = if exact {
            p.len() == max_len
        } else {
            (1..=max_len).contains(&p.len())
        };
        (ok_len && p.bytes().all(|b| b.is_ascii_digit())).then(|| p.parse().ok())?
    };
    let a = next(first_len, first_len == 4)?;
    let b = next(2, false)?;
    let c = next(2, false)?;
    parts.next().is_none().then_some((a, b, c))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_formatting() {
        assert_eq!(format_unix(0), "1970-01-01T00:00:00Z");
        assert_eq!(format_unix(1_611_577_535), "2021-01-25T12:25:35Z");
        assert_eq!(
            format_unix(1_611_577_535 + 87_600 * 3600),
            "2031-01-23T12:25:35Z"
        );
        assert_eq!(format_unix(951_782_400), "2000-02-29T00:00:00Z");
    }

    #[test]
    fn unix_formatting_before_1970_and_after_2038() {
        assert_eq!(format_unix(-1), "1969-12-31T23:59:59Z");
        assert_eq!(format_unix(-86_400), "1969-12-31T00:00:00Z");
        // X.509 UTCTime: 1950 to 2049.
        assert_eq!(format_unix(-631_152_000), "1950-01-01T00:00:00Z");
        assert_eq!(format_unix(-631_151_999 + 3_661), "1950-01-01T01:01:02Z");
        assert_eq!(format_unix(-68_256_000), "1967-11-03T00:00:00Z");
        assert_eq!(format_unix(-2_203_977_600), "1900-02-28T00:00:00Z");
        assert_eq!(
            format_unix(-2_203_891_200),
            "1900-03-01T00:00:00Z",
            "1900 is no leap year"
        );
        assert_eq!(format_unix(2_147_483_647), "2038-01-19T03:14:07Z");
        assert_eq!(format_unix(2_147_483_648), "2038-01-19T03:14:08Z");
        assert_eq!(format_unix(2_524_607_999), "2049-12-31T23:59:59Z");
        // X.509 GeneralizedTime: years 0000 to 9999.
        assert_eq!(format_unix(-62_167_219_200), "0000-01-01T00:00:00Z");
        assert_eq!(format_unix(-62_162_035_201), "0000-02-29T23:59:59Z");
        assert_eq!(format_unix(253_402_300_799), "9999-12-31T23:59:59Z");
    }

    #[test]
    fn go_time_forms() {
        let t = |s: &str| Timestamp::parse(s).map(|t| t.rfc3339_nano());
        assert_eq!(t("2024-01-15").as_deref(), Some("2024-01-15T00:00:00Z"));
        assert_eq!(t("2024-1-5 1:2:3").as_deref(), Some("2024-01-05T01:02:03Z"));
        assert_eq!(
            t("2024-01-15t10:20:30.500+01:00").as_deref(),
            Some("2024-01-15T10:20:30.5+01:00")
        );
        assert_eq!(
            t("2024-01-15T10:20:30-00:00").as_deref(),
            Some("2024-01-15T10:20:30Z")
        );
        assert_eq!(t("2024-01-15T10:20:30"), None);
        assert_eq!(t("2024-13-15"), None);
        assert_eq!(t("hello"), None);
        assert_eq!(t("2024-01-15 10:20:30Z"), None);
        let lm = Timestamp::parse("2026-11-23T03:43:56.123Z").unwrap();
        assert_eq!(lm.rfc3339(), "2026-11-23T03:43:56Z");
    }
}
