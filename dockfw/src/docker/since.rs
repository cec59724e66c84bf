//! The `since` argument of `GET /events`, taken from the engine's own clock.
//!
//! The watcher lists containers and then follows events. An event between
//! the two would be lost, so the stream is opened with `since` set to a
//! moment before the list: the engine replays what happened from then on
//! (replays are harmless, every event only triggers a re-inspect). The
//! engine compares `since` with its own clock, so the moment comes from
//! `GET /info`'s `SystemTime` (RFC 3339 with nanoseconds), not from ours.

/// Seconds subtracted from the engine time as a margin.
const MARGIN_SECS: i64 = 1;

/// `SystemTime` (`2026-05-07T21:09:36.123456789Z`, or with a `+02:00`
/// offset) turned into the `SECONDS.NANOSECONDS` form `/events?since=`
/// accepts, minus a margin. `None` if the text is not RFC 3339.
pub(crate) fn events_since(system_time: &str) -> Option<String> {
    let (secs, nanos) = rfc3339_to_unix(system_time)?;
    Some(format!("{}.{nanos:09}", secs - MARGIN_SECS))
}

/// Seconds and nanoseconds since the Unix epoch.
fn rfc3339_to_unix(text: &str) -> Option<(i64, u32)> {
    let text = text.trim();
    let (date, rest) = text.split_once(['T', 't', ' '])?;
    let mut date = date.splitn(3, '-');
    let year: i64 = date.next()?.parse().ok()?;
    let month: u32 = date.next()?.parse().ok()?;
    let day: u32 = date.next()?.parse().ok()?;

    // Split the clock from the zone: `Z`, `+hh:mm` or `-hh:mm`.
    let zone_at = rest.find(['Z', 'z', '+', '-'])?;
    let (clock, zone) = rest.split_at(zone_at);
    let offset_secs = match zone {
        "Z" | "z" => 0,
        _ => {
            let sign = if zone.starts_with('-') { -1 } else { 1 };
            let (hours, minutes) = zone.get(1..)?.split_once(':')?;
            let hours: i64 = hours.parse().ok()?;
            let minutes: i64 = minutes.parse().ok()?;
            sign * (hours * 3600 + minutes * 60)
        }
    };
    let (hms, fraction) = clock.split_once('.').unwrap_or((clock, ""));
    let mut hms = hms.splitn(3, ':');
    let hour: i64 = hms.next()?.parse().ok()?;
    let minute: i64 = hms.next()?.parse().ok()?;
    let second: i64 = hms.next()?.parse().ok()?;
    if !(1..=12).contains(&month)
        || !(1..=31).contains(&day)
        || hour > 23
        || minute > 59
        || second > 60
    {
        return None;
    }
    let nanos = if fraction.is_empty() {
        0
    } else {
        if fraction.len() > 9 || !fraction.bytes().all(|b| b.is_ascii_digit()) {
            return None;
        }
        let digits: u32 = fraction.parse().ok()?;
        digits * 10u32.pow(9 - u32::try_from(fraction.len()).ok()?)
    };
    let days = days_from_civil(year, month, day);
    Some((
        days * 86_400 + hour * 3600 + minute * 60 + second - offset_secs,
        nanos,
    ))
}

/// Days since 1970-01-01 in the proleptic Gregorian calendar (Howard
/// Hinnant's `days_from_civil`).
fn days_from_civil(year: i64, month: u32, day: u32) -> i64 {
    let year = if month <= 2 { year - 1 } else { year };
    let era = year.div_euclid(400);
    let year_of_era = year - era * 400;
    let month = i64::from(month);
    let day_of_year =
        (153 * (if month > 2 { month - 3 } else { month + 9 }) + 2) / 5 + i64::from(day) - 1;
    let day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    era * 146_097 + day_of_era - 719_468
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_docker_system_time() {
        assert_eq!(rfc3339_to_unix("1970-01-01T00:00:00Z"), Some((0, 0)));
        assert_eq!(
            rfc3339_to_unix("2026-11-26T23:09:18.158799111Z"),
            Some((1_795_734_558, 158_799_111))
        );
        assert_eq!(
            rfc3339_to_unix("2000-03-01T00:00:00.5Z"),
            Some((951_868_800, 500_000_000))
        );
        assert_eq!(
            rfc3339_to_unix("2026-11-27T01:09:18+02:00"),
            rfc3339_to_unix("2026-11-26T23:09:18Z")
        );
        assert_eq!(
            rfc3339_to_unix("2026-11-26T20:39:18-02:30"),
            rfc3339_to_unix("2026-11-26T23:09:18Z")
        );
    }

    #[test]
    fn rejects_what_is_not_rfc3339() {
        for bad in [
            "",
            "yesterday",
            "2026-13-01T00:00:00Z",
            "2026-01-01T00:00:00",
            "2026-01-01T00:00:00.1234567890Z",
        ] {
            assert_eq!(rfc3339_to_unix(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn since_has_a_margin_and_nine_fraction_digits() {
        assert_eq!(
            events_since("2026-11-26T23:09:18.0588Z").as_deref(),
            Some("1795734557.058800000")
        );
    }
}
