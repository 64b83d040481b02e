//! "Did you mean" for keys and project names: the closest candidate by edit distance.

/// The candidate closest to `word`, if it is close enough to be a likely typo.
pub fn closest<'a>(word: &str, candidates: impl IntoIterator<Item = &'a str>) -> Option<&'a str> {
    let limit = (word.chars().count() / 3).clamp(1, 3);
    candidates
        .into_iter()
        .map(|c| (distance(word, c), c))
        .filter(|(d, c)| *d <= limit && *c != word)
        .min_by_key(|(d, _)| *d)
        .map(|(_, c)| c)
}

/// Edit distance (insertions, deletions, substitutions and swaps of neighbours, the
/// commonest typos: optimal string alignment), treating `-` and `_` as equal.
pub fn distance(a: &str, b: &str) -> usize {
    let fold = |text: &str| text.replace('-', "_");
    strsim::osa_distance(&fold(a), &fold(b))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_typos_and_ignores_strangers() {
        let keys = ["image", "memory", "shm_size", "host_path"];
        assert_eq!(closest("imgae", keys), Some("image"));
        assert_eq!(closest("shm-size", keys), Some("shm_size"));
        assert_eq!(closest("hostpath", keys), Some("host_path"));
        assert_eq!(closest("volumes", keys), None);
        assert_eq!(closest("image", keys), None);
    }

    #[test]
    fn distance_counts_edits() {
        assert_eq!(distance("kitten", "sitting"), 3);
        assert_eq!(distance("", "abc"), 3);
        assert_eq!(distance("a-b", "a_b"), 0);
        assert_eq!(distance("imgae", "image"), 1);
    }
}
