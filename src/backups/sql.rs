//! Reading a SQL dump as statements, and deciding which of them a restore may run.
//!
//! A restore loads a dump into one app's database and nothing else, whatever the dump says:
//! the statements are split here (quotes, comments and `DELIMITER` as the `mariadb` client
//! reads them) and each is checked against an allowlist: tables, views, triggers, routines,
//! events, rows, session variables. `USE`, `CREATE`/`DROP`/`ALTER DATABASE`, users, grants,
//! global variables and anything not recognised are skipped and reported. The loader also
//! runs as the app's own account, which MariaDB lets touch no other database: a qualified
//! name (`other.t`) in an allowed statement fails there.

/// Splits a dump, fed line by line, into statements.
#[derive(Debug)]
pub struct Splitter {
    delimiter: String,
    buf: String,
    state: State,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum State {
    Code,
    Quoted(char),
    Comment,
}

impl Default for Splitter {
    fn default() -> Self {
        Self {
            delimiter: ";".into(),
            buf: String::new(),
            state: State::Code,
        }
    }
}

impl Splitter {
    /// Feeds one line (without its newline); returns the statements it completed.
    pub fn push_line(&mut self, line: &str) -> Vec<String> {
        let mut out = Vec::new();
        if self.state == State::Code && self.buf.trim().is_empty() {
            let head = line.trim_start();
            if head.len() > 10 && head[..10].eq_ignore_ascii_case("DELIMITER ") {
                let new = head[10..].trim();
                if !new.is_empty() {
                    self.delimiter = new.to_owned();
                }
                return out;
            }
            // mariadb-dump's first line, a client command that ends with no delimiter.
            if head.starts_with("/*M!999999\\-") {
                return out;
            }
        }
        let chars: Vec<char> = line.chars().collect();
        let delim: Vec<char> = self.delimiter.chars().collect();
        let mut i = 0;
        while i < chars.len() {
            let c = chars[i];
            let at = |s: &str| chars[i..].iter().copied().take(s.len()).eq(s.chars());
            match self.state {
                State::Code => {
                    if chars[i..].starts_with(&delim) {
                        self.emit(&mut out);
                        i += delim.len();
                        continue;
                    }
                    if c == '#' || (at("--") && chars.get(i + 2).is_none_or(|c| c.is_whitespace()))
                    {
                        break;
                    }
                    if at("/*") && !at("/*!") && !at("/*M!") {
                        self.state = State::Comment;
                        self.buf.push_str("/*");
                        i += 2;
                        continue;
                    }
                    if matches!(c, '\'' | '"' | '`') {
                        self.state = State::Quoted(c);
                    }
                    self.buf.push(c);
                }
                State::Quoted(q) => {
                    self.buf.push(c);
                    if c == '\\' && q != '`' {
                        if let Some(&next) = chars.get(i + 1) {
                            self.buf.push(next);
                            i += 1;
                        }
                    } else if c == q {
                        self.state = State::Code;
                    }
                }
                State::Comment => {
                    if at("*/") {
                        self.buf.push_str("*/");
                        self.state = State::Code;
                        i += 2;
                        continue;
                    }
                    self.buf.push(c);
                }
            }
            i += 1;
        }
        self.buf.push('\n');
        out
    }

    /// What is left after the last line: a statement without its delimiter, if any.
    pub fn finish(mut self) -> Vec<String> {
        let mut out = Vec::new();
        self.emit(&mut out);
        out
    }

    fn emit(&mut self, out: &mut Vec<String>) {
        let stmt = std::mem::take(&mut self.buf);
        if !words(&stmt).is_empty() {
            out.push(stmt.trim().to_owned());
        }
    }
}

/// The statement's words, upper-cased, as the server would read them: comments dropped,
/// versioned comments (`/*!40101 … */`) opened, quoted text replaced by `?`.
fn words(stmt: &str) -> Vec<String> {
    let mut text = String::with_capacity(stmt.len());
    let chars: Vec<char> = stmt.chars().collect();
    let mut i = 0;
    while i < chars.len() {
        let at = |s: &str| chars[i..].iter().copied().take(s.len()).eq(s.chars());
        let c = chars[i];
        if at("/*!") || at("/*M!") {
            i += if at("/*M!") { 4 } else { 3 };
            while i < chars.len() && chars[i].is_ascii_digit() {
                i += 1;
            }
            text.push(' ');
            continue;
        }
        if at("/*") {
            i += 2;
            while i < chars.len() && !(chars[i] == '*' && chars.get(i + 1) == Some(&'/')) {
                i += 1;
            }
            i += 2;
            text.push(' ');
            continue;
        }
        if at("*/") {
            text.push(' ');
            i += 2;
            continue;
        }
        if matches!(c, '\'' | '"' | '`') {
            i += 1;
            while i < chars.len() && chars[i] != c {
                if chars[i] == '\\' && c != '`' {
                    i += 1;
                }
                i += 1;
            }
            i += 1;
            text.push('?');
            continue;
        }
        if c == '#' || (at("--") && chars.get(i + 2).is_none_or(|c| c.is_whitespace())) {
            while i < chars.len() && chars[i] != '\n' {
                i += 1;
            }
            continue;
        }
        text.push(c);
        i += 1;
    }
    text.split(|c: char| c.is_whitespace() || c == '(' || c == ';')
        .filter(|w| !w.is_empty())
        .map(str::to_ascii_uppercase)
        .collect()
}

/// The objects a restore may create, drop or alter inside the app's database.
const OBJECTS: &[&str] = &[
    "TABLE",
    "TABLES",
    "VIEW",
    "TRIGGER",
    "PROCEDURE",
    "FUNCTION",
    "EVENT",
    "INDEX",
    "SEQUENCE",
];

/// Whether a restore may run `stmt`; `Err` says why not.
pub fn check(stmt: &str) -> Result<(), String> {
    let words = words(stmt);
    let refuse = |why: &str| Err(format!("{why}: {}", preview(stmt)));
    let Some(verb) = words.first() else {
        return refuse("empty statement");
    };
    match verb.as_str() {
        "INSERT" | "REPLACE" | "LOCK" | "UNLOCK" | "COMMIT" | "ROLLBACK" => Ok(()),
        "START" if words.get(1).is_some_and(|w| w == "TRANSACTION") => Ok(()),
        "SET" => {
            let next = words.get(1).map(String::as_str).unwrap_or("");
            let forbidden = ["GLOBAL", "PASSWORD", "ROLE", "DEFAULT"];
            if forbidden.contains(&next) || next.starts_with("@@GLOBAL") {
                refuse("a server-wide or account setting")
            } else {
                Ok(())
            }
        }
        "CREATE" | "DROP" | "ALTER" => {
            let object = words[1..].iter().find(|w| {
                let w = w.as_str();
                !(matches!(
                    w,
                    "OR" | "REPLACE"
                        | "IF"
                        | "NOT"
                        | "EXISTS"
                        | "ONLINE"
                        | "IGNORE"
                        | "TEMPORARY"
                        | "UNIQUE"
                        | "FULLTEXT"
                        | "SPATIAL"
                        | "AGGREGATE"
                        | "SQL"
                        | "SECURITY"
                        | "INVOKER"
                ) || w.starts_with("ALGORITHM=")
                    || w.starts_with("DEFINER=")
                    || w == "DEFINER")
            });
            match object {
                Some(o) if OBJECTS.contains(&o.as_str()) => Ok(()),
                _ => refuse("not a table, view, trigger, routine or event of this database"),
            }
        }
        _ => refuse("not allowed in a restore"),
    }
}

/// What a dump statement does to the tables it holds, as `mariadb-dump` writes them.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Tally {
    Created(String),
    /// `INSERT INTO `t` VALUES (…),(…)`: the table and how many rows.
    Inserted(String, u64),
    /// A view's stand-in table is dropped before the view is made.
    Dropped(String),
}

/// What `stmt` does to the tally of the dump's tables; most statements do nothing to it.
pub fn tally(stmt: &str) -> Option<Tally> {
    let words = words(stmt);
    let rest = stmt.trim_start();
    let table = || backquoted(&rest[rest.find('`')?..]);
    match (words.first()?.as_str(), words.get(1).map(String::as_str)) {
        ("CREATE", Some("TABLE")) => Some(Tally::Created(table()?.0)),
        ("DROP", Some("TABLE")) => Some(Tally::Dropped(table()?.0)),
        ("INSERT", _) => {
            let (name, after) = table()?;
            let values = after.find("VALUES")? + "VALUES".len();
            Some(Tally::Inserted(name, top_level_groups(&after[values..])))
        }
        _ => None,
    }
}

/// A backquoted identifier at the start of `text` (```` `` ```` inside it is one backquote),
/// and what follows it.
fn backquoted(text: &str) -> Option<(String, &str)> {
    let mut name = String::new();
    let mut chars = text.char_indices().skip(1).peekable();
    while let Some((i, c)) = chars.next() {
        if c == '`' {
            if chars.peek().is_some_and(|&(_, n)| n == '`') {
                chars.next();
                name.push('`');
                continue;
            }
            return Some((name, &text[i + 1..]));
        }
        name.push(c);
    }
    None
}

/// How many parenthesised groups `text` has at its top level, outside quoted strings.
fn top_level_groups(text: &str) -> u64 {
    let (mut groups, mut depth) = (0, 0_u32);
    let mut quote: Option<char> = None;
    let mut escaped = false;
    for c in text.chars() {
        if let Some(q) = quote {
            if escaped {
                escaped = false;
            } else if c == '\\' {
                escaped = true;
            } else if c == q {
                quote = None;
            }
            continue;
        }
        match c {
            '\'' | '"' => quote = Some(c),
            '(' => {
                if depth == 0 {
                    groups += 1;
                }
                depth += 1;
            }
            ')' => depth = depth.saturating_sub(1),
            _ => {}
        }
    }
    groups
}

/// The start of a statement, for messages.
fn preview(stmt: &str) -> String {
    let one_line: String = stmt.split_whitespace().collect::<Vec<_>>().join(" ");
    match one_line.char_indices().nth(80) {
        Some((at, _)) => format!("{}…", &one_line[..at]),
        None => one_line,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tally_counts_tables_and_the_rows_a_dump_inserts() {
        let created = |t: &str| Some(Tally::Created(t.into()));
        let inserted = |t: &str, n| Some(Tally::Inserted(t.into(), n));
        assert_eq!(
            tally("CREATE TABLE `notes` (\n  `id` int NOT NULL\n) ENGINE=InnoDB"),
            created("notes")
        );
        assert_eq!(
            tally("CREATE TABLE IF NOT EXISTS `we``ird` (`a` int)"),
            created("we`ird")
        );
        assert_eq!(
            tally("INSERT INTO `notes` VALUES (1,'a (b), c'),(2,'it\\'s (x)'),(3,\"q\")"),
            inserted("notes", 3)
        );
        assert_eq!(
            tally("INSERT INTO `t` VALUES (0x28),(ROUND(1.5)),('')"),
            inserted("t", 3)
        );
        assert_eq!(
            tally("INSERT INTO `values` VALUES (1)"),
            inserted("values", 1)
        );
        assert_eq!(
            tally("DROP TABLE IF EXISTS `notes`"),
            Some(Tally::Dropped("notes".into()))
        );
        assert_eq!(tally("/*!50001 DROP VIEW IF EXISTS `v`*/"), None);
        assert_eq!(tally("LOCK TABLES `notes` WRITE"), None);
    }

    fn split(dump: &str) -> Vec<String> {
        let mut s = Splitter::default();
        let mut out: Vec<String> = dump.lines().flat_map(|l| s.push_line(l)).collect();
        out.extend(s.finish());
        out
    }

    const DUMP: &str = r#"/*M!999999\- enable the sandbox mode */
-- MariaDB dump 10.19  Distrib 10.11.19-MariaDB
/*!40101 SET @OLD_CHARACTER_SET_CLIENT=@@CHARACTER_SET_CLIENT */;
/*M!100616 SET @OLD_NOTE_VERBOSITY=@@NOTE_VERBOSITY, NOTE_VERBOSITY=0 */;
DROP TABLE IF EXISTS `rows`;
CREATE TABLE `rows` (
  `id` int(11) NOT NULL AUTO_INCREMENT,
  `v` text DEFAULT 'a;b -- c',
  PRIMARY KEY (`id`)
) ENGINE=InnoDB;
LOCK TABLES `rows` WRITE;
/*!40000 ALTER TABLE `rows` DISABLE KEYS */;
INSERT INTO `rows` VALUES (1,'it\'s; fine'),(2,'# not a comment /* nor this */');
UNLOCK TABLES;
DELIMITER ;;
/*!50003 CREATE*/ /*!50017 DEFINER=`app_x`@`%`*/ /*!50003 TRIGGER t BEFORE INSERT ON `rows` FOR EACH ROW BEGIN
  SET NEW.v = CONCAT(NEW.v, ';');
END */;;
DELIMITER ;
/*!50106 CREATE*/ /*!50117 DEFINER=`app_x`@`%`*/ /*!50106 EVENT `e` ON SCHEDULE EVERY 1 DAY DO DELETE FROM `rows` */ ;
"#;

    #[test]
    fn a_real_dump_splits_into_its_statements_and_all_of_them_may_run() {
        let stmts = split(DUMP);
        assert_eq!(stmts.len(), 10, "{stmts:#?}");
        assert!(stmts[3].contains("'a;b -- c'"), "{}", stmts[3]);
        assert!(
            stmts[6].ends_with("'# not a comment /* nor this */')"),
            "{}",
            stmts[6]
        );
        assert!(
            stmts[8].contains("SET NEW.v = CONCAT(NEW.v, ';');\nEND */"),
            "{}",
            stmts[8]
        );
        for s in &stmts {
            check(s).unwrap();
        }
    }

    #[test]
    fn a_hostile_dump_cannot_leave_the_app_database() {
        let hostile = r#"
USE `other_db`;
use other_db;
/*!40000 USE other_db */;
DROP DATABASE other_db;
DROP /* hidden */ SCHEMA IF EXISTS `other_db`;
/*!32312 CREATE DATABASE IF NOT EXISTS `other_db` */;
CREATE OR REPLACE USER evil IDENTIFIED BY 'x';
GRANT ALL ON *.* TO 'app_x'@'%';
REVOKE ALL ON *.* FROM root;
SET GLOBAL event_scheduler = 1;
SET @@global.read_only = 1;
SET PASSWORD FOR root = PASSWORD('x');
ALTER DATABASE other_db CHARACTER SET latin1;
RENAME USER root TO x;
FLUSH PRIVILEGES;
LOAD DATA INFILE '/etc/passwd' INTO TABLE t;
SELECT * FROM t INTO OUTFILE '/tmp/x';
SHUTDOWN;
CREATE ROLE r;
CREATE SERVER s FOREIGN DATA WRAPPER mysql OPTIONS (HOST 'x');
"#;
        let stmts = split(hostile);
        assert_eq!(stmts.len(), 20, "{stmts:#?}");
        for s in &stmts {
            assert!(check(s).is_err(), "allowed: {s}");
        }
        // Quoting and comments cannot smuggle a delimiter or a keyword either.
        let tricky = split(
            "INSERT INTO t VALUES ('x'';USE other_db;');\nINSERT INTO t VALUES (\"a\\\";USE b\");",
        );
        assert_eq!(tricky.len(), 2, "{tricky:#?}");
        for s in &tricky {
            check(s).unwrap();
        }
    }

    #[test]
    fn refusals_quote_the_statement_briefly() {
        let why = check("USE other_db").unwrap_err();
        assert!(why.contains("USE other_db"), "{why}");
        assert!(check(&"INSERT ".repeat(100)).is_ok());
        assert!(preview(&"x".repeat(200)).chars().count() <= 81);
    }
}
