//! A manifesto as a page shows it: plain text, paragraphs at blank lines, and web
//! addresses as links. Nothing the nominee writes becomes markup: each piece is text the
//! template escapes, and only `http://` and `https://` addresses become links (so a
//! `javascript:` address stays text).

/// A run of text, or a link whose text is its address.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Piece {
    pub text: String,
    pub href: Option<String>,
}

/// Paragraphs (split at blank lines), each a list of lines, each a list of pieces.
pub fn paragraphs(text: &str) -> Vec<Vec<Vec<Piece>>> {
    text.replace("\r\n", "\n")
        .split("\n\n")
        .map(str::trim)
        .filter(|p| !p.is_empty())
        .map(|p| p.lines().map(pieces).collect())
        .collect()
}

fn pieces(line: &str) -> Vec<Piece> {
    let mut out: Vec<Piece> = Vec::new();
    let mut plain = String::new();
    for (i, word) in line.split(' ').enumerate() {
        if i > 0 {
            plain.push(' ');
        }
        let address_end = word.trim_end_matches(['.', ',', ';', ':', '!', '?', ')', '"', '\'']).len();
        let (address, tail) = word.split_at(address_end);
        let is_link = (address.starts_with("https://") || address.starts_with("http://"))
            && address.len() > "https://".len()
            && !address.contains(['<', '>', '"']);
        if is_link {
            if !plain.is_empty() {
                out.push(Piece { text: std::mem::take(&mut plain), href: None });
            }
            out.push(Piece { text: address.to_owned(), href: Some(address.to_owned()) });
            plain.push_str(tail);
        } else {
            plain.push_str(word);
        }
    }
    if !plain.is_empty() {
        out.push(Piece { text: plain, href: None });
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    fn link(s: &str) -> Piece {
        Piece { text: s.into(), href: Some(s.into()) }
    }
    fn text(s: &str) -> Piece {
        Piece { text: s.into(), href: None }
    }

    #[test]
    fn paragraphs_lines_and_links() {
        let got = paragraphs("Vote for me.\nSee https://example.org/ada.\n\n\n<b>bold</b> javascript:alert(1)");
        assert_eq!(
            got,
            vec![
                vec![vec![text("Vote for me.")], vec![text("See "), link("https://example.org/ada"), text(".")]],
                vec![vec![text("<b>bold</b> javascript:alert(1)")]],
            ],
            "markup stays text (the template escapes it) and only http(s) becomes a link"
        );
        assert!(paragraphs("  \n\n ").is_empty());
        assert_eq!(paragraphs("https://")[0][0], vec![text("https://")]);
    }
}
