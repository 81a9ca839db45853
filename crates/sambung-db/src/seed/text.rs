//! The synthetic dataset's text: words drawn from a vocabulary of 25,000 with Zipf's law, as
//! in real writing, so a search word is common, middling or rare as it would be in a real chat
//! history (a 110-word vocabulary made every search word match a large share of all rows).

use std::ops::Range;
use std::sync::LazyLock;

use serde::Serialize;

use super::Rng;

/// How many words the vocabulary has.
pub const VOCABULARY_SIZE: usize = 25_000;

/// The most frequent words, in order of frequency: words of chat about work, code and life
/// (some Indonesian). Made-up pronounceable words follow them.
const FREQUENT: &[&str] = &[
    "review",
    "code",
    "essay",
    "plan",
    "summary",
    "translate",
    "explain",
    "python",
    "rust",
    "postgres",
    "database",
    "query",
    "index",
    "table",
    "column",
    "write",
    "story",
    "poem",
    "email",
    "letter",
    "report",
    "meeting",
    "notes",
    "agenda",
    "bug",
    "fix",
    "test",
    "deploy",
    "server",
    "client",
    "browser",
    "network",
    "security",
    "password",
    "token",
    "session",
    "user",
    "team",
    "chat",
    "message",
    "prompt",
    "model",
    "answer",
    "question",
    "idea",
    "draft",
    "outline",
    "chapter",
    "section",
    "paragraph",
    "sentence",
    "word",
    "grammar",
    "style",
    "tone",
    "voice",
    "audience",
    "market",
    "product",
    "price",
    "customer",
    "support",
    "ticket",
    "refund",
    "order",
    "invoice",
    "payment",
    "budget",
    "forecast",
    "sales",
    "growth",
    "strategy",
    "vision",
    "mission",
    "goal",
    "task",
    "project",
    "deadline",
    "schedule",
    "calendar",
    "travel",
    "hotel",
    "flight",
    "recipe",
    "cooking",
    "garden",
    "music",
    "movie",
    "book",
    "game",
    "sport",
    "health",
    "fitness",
    "jakarta",
    "bandung",
    "nasi",
    "goreng",
    "kopi",
    "selamat",
    "pagi",
    "terima",
    "kasih",
    "belajar",
    "bahasa",
];

/// The dataset's words, most frequent first.
pub struct Vocabulary {
    words: Vec<String>,
}

/// The vocabulary, made once.
pub fn vocabulary() -> &'static Vocabulary {
    static VOCABULARY: LazyLock<Vocabulary> = LazyLock::new(Vocabulary::new);
    &VOCABULARY
}

impl Vocabulary {
    fn new() -> Vocabulary {
        const CONSONANTS: &[u8] = b"bdfghjklmnprstw";
        const VOWELS: &[u8] = b"aeiou";
        let syllables = CONSONANTS.len() * VOWELS.len();
        let space = syllables.pow(3);
        let mut words: Vec<String> = FREQUENT.iter().map(|w| (*w).to_owned()).collect();
        // Three syllables each; the number is scrambled by a multiplier prime to the space of
        // words (a bijection), so that neighbouring ranks do not read alike.
        let made_up = (0..space).map(|n| {
            let mut k = (n * 7_919) % space;
            let mut word = String::with_capacity(6);
            for _ in 0..3 {
                let s = k % syllables;
                k /= syllables;
                word.push(CONSONANTS[s / VOWELS.len()] as char);
                word.push(VOWELS[s % VOWELS.len()] as char);
            }
            word
        });
        for word in made_up {
            if words.len() == VOCABULARY_SIZE {
                break;
            }
            if !FREQUENT.contains(&word.as_str()) {
                words.push(word);
            }
        }
        Vocabulary { words }
    }

    /// The word of `rank` (0 is the most frequent).
    pub fn word(&self, rank: usize) -> &str {
        &self.words[rank]
    }

    /// A word at random: rank `k` with probability ln((k+2)/(k+1)) / ln(N+1), about
    /// 1 / ((k+1.5) ln N), Zipf's law with exponent 1. One `exp` per word, by inverting the
    /// distribution function ln(k+1) / ln(N+1).
    fn draw(&self, rng: &mut Rng) -> &str {
        &self.words[self.draw_rank(rng)]
    }

    fn draw_rank(&self, rng: &mut Rng) -> usize {
        let unit = (rng.next() >> 11) as f64 / (1u64 << 53) as f64;
        let n = self.words.len();
        ((unit * ((n + 1) as f64).ln()).exp() as usize).clamp(1, n) - 1
    }

    /// About `chars` characters of words.
    pub(super) fn sentence(&self, rng: &mut Rng, chars: usize) -> String {
        let mut text = String::with_capacity(chars + 16);
        while text.len() < chars {
            if !text.is_empty() {
                text.push(' ');
            }
            text.push_str(self.draw(rng));
        }
        text
    }

    /// Search words of a frequency band: `count` of them, spread evenly over its ranks.
    pub fn band(&self, band: Frequency, count: usize) -> Vec<&str> {
        let ranks = band.ranks();
        let step = (ranks.len() / count.max(1)).max(1);
        ranks
            .step_by(step)
            .take(count)
            .map(|rank| self.word(rank))
            .collect()
    }
}

/// How often a search word occurs in the dataset's text.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "kebab-case")]
pub enum Frequency {
    /// The 10 most frequent words: each is 1 in 15 to 1 in 100 of all words.
    Common,
    /// Ranks 100 to 1,000: each about 1 in 1,000 to 1 in 10,000.
    Middling,
    /// Ranks 10,000 to 25,000: each about 1 in 100,000 to 1 in 250,000.
    Rare,
}

impl Frequency {
    pub const ALL: [Frequency; 3] = [Frequency::Common, Frequency::Middling, Frequency::Rare];

    pub fn name(self) -> &'static str {
        match self {
            Frequency::Common => "common",
            Frequency::Middling => "middling",
            Frequency::Rare => "rare",
        }
    }

    /// The vocabulary ranks of the band.
    pub fn ranks(self) -> Range<usize> {
        match self {
            Frequency::Common => 0..10,
            Frequency::Middling => 100..1_000,
            Frequency::Rare => 10_000..VOCABULARY_SIZE,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_vocabulary_has_distinct_words_in_a_fixed_order() {
        let v = vocabulary();
        assert_eq!(v.words.len(), VOCABULARY_SIZE);
        let mut sorted = v.words.clone();
        sorted.sort();
        sorted.dedup();
        assert_eq!(sorted.len(), VOCABULARY_SIZE, "duplicate words");
        assert_eq!((v.word(0), v.word(103)), ("review", "bahasa"));
        // Fixed: the made-up words are the same on every run (the dataset depends on them).
        assert_eq!(v.word(104), Vocabulary::new().word(104));
        assert!(v
            .words
            .iter()
            .all(|w| w.chars().all(|c| c.is_ascii_lowercase())));
    }

    #[test]
    fn words_follow_zipfs_law() {
        let v = vocabulary();
        let mut rng = Rng(42);
        let mut seen = vec![0u32; VOCABULARY_SIZE];
        let draws = 2_000_000;
        for _ in 0..draws {
            seen[v.draw_rank(&mut rng)] += 1;
        }
        let share = |ranks: Range<usize>| {
            seen[ranks.clone()].iter().map(|&n| n as f64).sum::<f64>() / draws as f64
        };
        let expected = |ranks: Range<usize>| {
            (((ranks.end + 1) as f64).ln() - ((ranks.start + 1) as f64).ln())
                / ((VOCABULARY_SIZE + 1) as f64).ln()
        };
        for band in Frequency::ALL {
            let (got, want) = (share(band.ranks()), expected(band.ranks()));
            assert!(
                (got - want).abs() < want * 0.05,
                "{band:?}: {got} vs {want}"
            );
        }
        // The most frequent word is about ten times as frequent as the tenth.
        let ratio = seen[0] as f64 / seen[9] as f64;
        assert!((6.0..9.0).contains(&ratio), "{ratio}");
    }

    #[test]
    fn bands_give_distinct_words_from_their_ranks() {
        let v = vocabulary();
        for band in Frequency::ALL {
            let words = v.band(band, 20);
            assert_eq!(words.len(), 20.min(band.ranks().len()));
            let mut unique = words.clone();
            unique.sort();
            unique.dedup();
            assert_eq!(unique.len(), words.len());
            assert!(words.iter().all(|w| band
                .ranks()
                .contains(&v.words.iter().position(|x| x == w).unwrap())));
        }
        assert_eq!(v.band(Frequency::Common, 3), ["review", "plan", "explain"]);
    }
}
