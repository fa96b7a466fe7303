//! "Did you mean" suggestions: the closest candidate within an edit-distance cap.

/// Levenshtein distance between two strings, counted in characters.
pub fn edit_distance(a: &str, b: &str) -> usize {
    let b_chars: Vec<char> = b.chars().collect();
    let mut previous: Vec<usize> = (0..=b_chars.len()).collect();
    let mut current = vec![0; b_chars.len() + 1];
    for (i, ca) in a.chars().enumerate() {
        current[0] = i + 1;
        for (j, cb) in b_chars.iter().enumerate() {
            let substitution = previous[j] + usize::from(ca != *cb);
            current[j + 1] = substitution.min(previous[j + 1] + 1).min(current[j] + 1);
        }
        std::mem::swap(&mut previous, &mut current);
    }
    previous[b_chars.len()]
}

/// The candidate closest to `input`, if it is within `max(1, len/3)` edits (a case-only
/// difference always counts as close). Ties go to the first candidate.
pub fn closest<'a, I>(input: &str, candidates: I) -> Option<&'a str>
where
    I: IntoIterator<Item = &'a str>,
{
    let cap = (input.chars().count() / 3).max(1);
    let lowered = input.to_lowercase();
    let mut best: Option<(usize, &'a str)> = None;
    for candidate in candidates {
        let distance = if candidate.to_lowercase() == lowered {
            0
        } else {
            edit_distance(input, candidate)
        };
        if distance <= cap && best.is_none_or(|(d, _)| distance < d) {
            best = Some((distance, candidate));
        }
    }
    best.map(|(_, candidate)| candidate)
}

/// `did you mean `x`?` for the closest candidate, if any.
pub fn hint<'a, I>(input: &str, candidates: I) -> Option<String>
where
    I: IntoIterator<Item = &'a str>,
{
    closest(input, candidates).map(|c| format!("did you mean `{c}`?"))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn distance_counts_edits() {
        assert_eq!(edit_distance("kitten", "sitting"), 3);
        assert_eq!(edit_distance("", "abc"), 3);
        assert_eq!(edit_distance("same", "same"), 0);
    }

    #[test]
    fn suggests_within_the_cap_only() {
        let fields = ["num_hosts", "region", "provider"];
        assert_eq!(closest("num_host", fields), Some("num_hosts"));
        assert_eq!(closest("regoin", fields), Some("region"));
        assert_eq!(closest("colour", fields), None);
        assert_eq!(closest("REGION", fields), Some("region"));
    }
}
