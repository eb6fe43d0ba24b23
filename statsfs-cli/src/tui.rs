//! The live view of `statsfs top` and `statsfs kvm` in a terminal (ratatui over
//! crossterm). The state and the keys ([`App`]) are apart from the drawing ([`draw`]),
//! so both are tested without a terminal (ratatui's test backend) and the real terminal
//! once in tmux.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use signal_hook::consts::{SIGHUP, SIGINT, SIGTERM};

use ratatui::crossterm::event::{self, Event, KeyCode, KeyEvent, KeyEventKind, KeyModifiers};
use ratatui::layout::{Constraint, Layout};
use ratatui::style::{Modifier, Style};
use ratatui::text::Line;
use ratatui::widgets::{Cell, Paragraph, Row as TableRow, Table, TableState};
use ratatui::Frame;

use super::args::{Sort, ViewArgs};
use super::error::CliError;
use super::reader::Reader;
use super::table::{self, fmt_rate, fmt_share, Row, View};

/// The keys, as the bottom line shows them.
pub(crate) const HELP: &str = "q quit  ↑↓ select  Enter per child  d drill  u up  o sort  \
                               f filter  c clear  z zeros  r reset  +- interval  h help";

/// What the keys do in the mode the view is in.
#[derive(Debug, Clone, PartialEq)]
pub(crate) enum Mode {
    /// The table of stats.
    Table,
    /// Choosing a child source to drill into.
    Drill,
    /// Typing a filter.
    Filter(String),
    /// The help screen.
    Help,
}

/// What a key asks of the loop.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Action {
    /// Draw again.
    Redraw,
    /// Leave.
    Quit,
}

/// The state of the live view.
#[derive(Debug)]
pub(crate) struct App {
    /// Where the view is and what it shows.
    pub view: View,
    /// The keys' mode.
    pub mode: Mode,
    /// The highlighted row (of the table, or of the children list when drilling).
    pub selected: usize,
    /// Where drilling down came from, to go back up.
    stack: Vec<(usize, Option<String>)>,
    /// Seconds between refreshes.
    pub interval: Duration,
    /// The values of the refresh before the last, and when; for the rates.
    pub prev: Vec<u64>,
    /// How long between the two refreshes.
    pub dt: f64,
    /// A message for the status line (a bad filter).
    pub message: Option<String>,
}

impl App {
    /// The view the command line asks for.
    pub fn new(args: &ViewArgs, reader: &Reader) -> Result<App, CliError> {
        Ok(App {
            view: View::new(args, &reader.model, &reader.label)?,
            mode: Mode::Table,
            selected: 0,
            stack: Vec::new(),
            interval: args.interval,
            prev: reader.data.clone(),
            dt: 0.0,
            message: None,
        })
    }

    /// The rows shown now.
    pub fn rows(&self, reader: &Reader) -> Vec<Row> {
        self.view
            .rows(&reader.model, &reader.data, &self.prev, self.dt)
    }

    /// Handles one key.
    pub fn key(&mut self, key: KeyEvent, reader: &Reader) -> Action {
        if key.modifiers.contains(KeyModifiers::CONTROL) && key.code == KeyCode::Char('c') {
            return Action::Quit;
        }
        let model = &reader.model;
        match std::mem::replace(&mut self.mode, Mode::Table) {
            Mode::Help => {}
            Mode::Filter(mut text) => match key.code {
                KeyCode::Enter => {
                    self.message = None;
                    if text.is_empty() {
                        self.view.filter = None;
                    } else {
                        match table::filter(&text) {
                            Ok(re) => self.view.filter = Some(re),
                            Err(e) => {
                                self.message = Some(crate::printable(&e.to_string()).into_owned())
                            }
                        }
                    }
                    self.selected = 0;
                }
                KeyCode::Esc => {}
                KeyCode::Backspace => {
                    text.pop();
                    self.mode = Mode::Filter(text);
                }
                KeyCode::Char(c) => {
                    text.push(c);
                    self.mode = Mode::Filter(text);
                }
                _ => self.mode = Mode::Filter(text),
            },
            Mode::Drill => {
                let children = &model.sources[self.view.node].children;
                match key.code {
                    KeyCode::Up => {
                        self.selected = self.selected.saturating_sub(1);
                        self.mode = Mode::Drill;
                    }
                    KeyCode::Down => {
                        self.selected = (self.selected + 1).min(children.len().saturating_sub(1));
                        self.mode = Mode::Drill;
                    }
                    KeyCode::Enter => {
                        if let Some(&c) = children.get(self.selected) {
                            self.enter(c, None);
                        }
                    }
                    KeyCode::Esc | KeyCode::Char('q') => self.selected = 0,
                    _ => self.mode = Mode::Drill,
                }
            }
            Mode::Table => match key.code {
                KeyCode::Char('q') => return Action::Quit,
                KeyCode::Esc if self.stack.is_empty() => return Action::Quit,
                KeyCode::Up => self.selected = self.selected.saturating_sub(1),
                KeyCode::Down => {
                    let last = self.rows(reader).len().saturating_sub(1);
                    self.selected = (self.selected + 1).min(last);
                }
                KeyCode::Enter => {
                    let rows = self.rows(reader);
                    if let Some(row) = rows.get(self.selected.min(rows.len().saturating_sub(1))) {
                        let st = &model.stats[row.stat];
                        if self.view.children_of.is_some() {
                            // A child's row: into that child.
                            self.enter(st.source, None);
                        } else {
                            let name = st.name.clone();
                            self.enter(st.source, Some(name));
                        }
                    }
                }
                KeyCode::Char('d') if !model.sources[self.view.node].children.is_empty() => {
                    self.selected = 0;
                    self.mode = Mode::Drill;
                }
                KeyCode::Char('u') | KeyCode::Backspace | KeyCode::Esc => self.up(reader),
                KeyCode::Char('o') => {
                    self.view.sort = match self.view.sort {
                        Sort::Total => Sort::Rate,
                        Sort::Rate => Sort::Total,
                    }
                }
                KeyCode::Char('f') => {
                    let text = self
                        .view
                        .filter
                        .as_ref()
                        .map(|r| r.as_str().to_owned())
                        .unwrap_or_default();
                    self.mode = Mode::Filter(text);
                }
                KeyCode::Char('c') => {
                    self.view.filter = None;
                    self.message = None;
                }
                KeyCode::Char('z') => self.view.skip_zeros = !self.view.skip_zeros,
                KeyCode::Char('r') => self.view.baseline = Some(reader.data.clone()),
                KeyCode::Char('+') => {
                    self.interval = (self.interval * 2).min(Duration::from_secs(3600))
                }
                KeyCode::Char('-') => {
                    self.interval = (self.interval / 2).max(Duration::from_millis(100))
                }
                KeyCode::Char('h') | KeyCode::Char('?') => self.mode = Mode::Help,
                _ => {}
            },
        }
        Action::Redraw
    }

    fn enter(&mut self, node: usize, children_of: Option<String>) {
        self.stack
            .push((self.view.node, self.view.children_of.take()));
        self.view.node = node;
        self.view.children_of = children_of;
        self.selected = 0;
        self.mode = Mode::Table;
    }

    fn up(&mut self, reader: &Reader) {
        if let Some((node, children_of)) = self.stack.pop() {
            self.view.node = node;
            self.view.children_of = children_of;
        } else if self.view.children_of.is_some() {
            self.view.children_of = None;
        } else if let Some(p) = reader.model.sources[self.view.node].parent {
            self.view.node = p;
        }
        self.selected = 0;
    }

    /// After a refresh (`prev` and `t0`: the values and time before it).
    pub fn refreshed(&mut self, prev: Vec<u64>, t0: Instant, reader: &Reader) {
        self.dt = reader.at.duration_since(t0).as_secs_f64();
        self.prev = prev;
    }

    /// After a change of layout: the view's source found again by its path (or the
    /// top), the baseline moved.
    pub fn relaid(&mut self, path: &str, stack: Vec<(String, Option<String>)>, reader: &Reader) {
        let model = &reader.model;
        self.view.node = model.find(path).unwrap_or(0);
        self.stack = stack
            .into_iter()
            .filter_map(|(p, c)| Some((model.find(&p)?, c)))
            .collect();
        if let Some(b) = &self.view.baseline {
            self.view.baseline = Some(reader.carry(b));
        }
    }

    /// The paths of the view and of its stack, which survive a change of layout.
    pub fn paths(&self, reader: &Reader) -> (String, Vec<(String, Option<String>)>) {
        let path = |i: usize| reader.model.sources[i].path.clone();
        (
            path(self.view.node),
            self.stack
                .iter()
                .map(|(n, c)| (path(*n), c.clone()))
                .collect(),
        )
    }
}

/// Draws the view: a heading, the table (or the list of children, or the help), the
/// status and keys line.
pub(crate) fn draw(frame: &mut Frame<'_>, app: &App, reader: &Reader) {
    let [head, body, foot] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Min(1),
        Constraint::Length(1),
    ])
    .areas(frame.area());
    let sort = match app.view.sort {
        Sort::Total => "total",
        Sort::Rate => "rate",
    };
    let mut status = format!(
        "{} — {}  every {:.2} s  sort: {sort}",
        reader.label,
        app.view.title(&reader.model),
        app.interval.as_secs_f64()
    );
    if let Some(f) = &app.view.filter {
        status.push_str(&format!("  filter: {}", f.as_str()));
    }
    if app.view.skip_zeros {
        status.push_str("  zeros skipped");
    }
    if app.view.baseline.is_some() {
        status.push_str("  since reset");
    }
    if reader.writer_gone() {
        status.push_str("  WRITER GONE: last values");
    }
    frame.render_widget(
        Paragraph::new(status).style(Style::default().add_modifier(Modifier::BOLD)),
        head,
    );
    let bold = Style::default().add_modifier(Modifier::BOLD);
    let highlight = Style::default().add_modifier(Modifier::REVERSED);
    match &app.mode {
        Mode::Help => {
            let text: Vec<Line<'_>> = [
                "↑ ↓        select a row",
                "Enter      the selected stat in each child source (in that view: into the child)",
                "d          drill down into a child source (choose with ↑ ↓, Enter)",
                "u, ⌫, Esc  back up",
                "o          sort by total or by rate",
                "f          filter by regular expression (Enter applies, Esc cancels)",
                "c          clear the filter",
                "z          skip stats whose total and rate are 0",
                "r          reset: count totals from now on (the stats are not written)",
                "+ -        double or halve the interval",
                "q          quit (any key closes this help)",
            ]
            .into_iter()
            .map(Line::from)
            .collect();
            frame.render_widget(Paragraph::new(text), body);
        }
        Mode::Drill => {
            let children = &reader.model.sources[app.view.node].children;
            let rows = children.iter().map(|&c| {
                let s = &reader.model.sources[c];
                TableRow::new(vec![
                    Cell::from(s.name().to_owned()),
                    Cell::from(format!(
                        "{} stats, {} children",
                        s.stats.len(),
                        s.children.len()
                    )),
                ])
            });
            let table = Table::new(rows, [Constraint::Min(24), Constraint::Length(28)])
                .header(TableRow::new(vec!["drill down into", ""]).style(bold))
                .row_highlight_style(highlight);
            let mut state = TableState::default().with_selected(Some(app.selected));
            frame.render_stateful_widget(table, body, &mut state);
        }
        Mode::Table | Mode::Filter(_) => {
            let rows = app.rows(reader);
            let width = rows.iter().map(|r| r.name.len()).max().unwrap_or(0).max(24) as u16 + 2;
            let selected = app.selected.min(rows.len().saturating_sub(1));
            let lines = rows.iter().map(|r| {
                TableRow::new(vec![
                    Cell::from(r.name.clone()),
                    Cell::from(Line::from(r.total.to_string()).right_aligned()),
                    Cell::from(Line::from(fmt_rate(r.rate)).right_aligned()),
                    Cell::from(Line::from(fmt_share(r.share)).right_aligned()),
                ])
            });
            let first = if app.view.children_of.is_some() {
                "source"
            } else {
                "name"
            };
            let header = TableRow::new(vec![
                Cell::from(first),
                Cell::from(Line::from("total").right_aligned()),
                Cell::from(Line::from("rate/s").right_aligned()),
                Cell::from(Line::from("%total").right_aligned()),
            ])
            .style(bold);
            let table = Table::new(
                lines,
                [
                    Constraint::Length(width),
                    Constraint::Length(16),
                    Constraint::Length(14),
                    Constraint::Length(8),
                ],
            )
            .header(header)
            .row_highlight_style(highlight);
            let mut state =
                TableState::default().with_selected((!rows.is_empty()).then_some(selected));
            frame.render_stateful_widget(table, body, &mut state);
        }
    }
    let foot_text = match (&app.mode, &app.message) {
        (Mode::Filter(text), _) => format!("filter (regex, Enter applies, Esc cancels): {text}"),
        (_, Some(m)) => m.clone(),
        _ => HELP.to_owned(),
    };
    frame.render_widget(Paragraph::new(foot_text), foot);
}

/// Runs the live view until `q` or Ctrl-C. The terminal is restored on the way out,
/// also after a panic (ratatui's hook).
pub(crate) fn run(reader: &mut Reader, args: &ViewArgs) -> Result<(), CliError> {
    let mut app = App::new(args, reader)?;
    // SIGTERM, SIGHUP (the terminal closed) and SIGINT end the loop like `q`, so the
    // terminal is restored; raw mode already turns Ctrl-C into a key.
    let stop = Arc::new(AtomicBool::new(false));
    for sig in [SIGTERM, SIGHUP, SIGINT] {
        signal_hook::flag::register(sig, stop.clone()).map_err(CliError::Terminal)?;
    }
    let mut terminal = match ratatui::try_init() {
        Ok(t) => t,
        Err(e) => {
            // Raw mode may be on already: put the terminal back before saying why.
            ratatui::restore();
            return Err(CliError::Terminal(e));
        }
    };
    let result = (|| -> Result<(), CliError> {
        let mut next = Instant::now() + app.interval;
        loop {
            if stop.load(Ordering::Relaxed) {
                return Ok(());
            }
            terminal
                .draw(|f| draw(f, &app, reader))
                .map_err(CliError::Terminal)?;
            let now = Instant::now();
            if now >= next {
                let (path, stack) = app.paths(reader);
                if reader.wait(Duration::ZERO)? {
                    app.relaid(&path, stack, reader);
                }
                let (prev, t0) = (reader.data.clone(), reader.at);
                reader.refresh()?;
                app.refreshed(prev, t0, reader);
                next = Instant::now() + app.interval;
                continue;
            }
            // At most a quarter second between looks at the signal flag.
            let wait = (next - now).min(Duration::from_millis(250));
            if event::poll(wait).map_err(CliError::Terminal)? {
                // Anything else (a resize) just draws again, laid out for the new size.
                if let Event::Key(k) = event::read().map_err(CliError::Terminal)? {
                    if k.kind == KeyEventKind::Press && app.key(k, reader) == Action::Quit {
                        return Ok(());
                    }
                }
            }
        }
    })();
    ratatui::restore();
    result
}

#[cfg(test)]
mod tests {
    use super::*;
    use ratatui::backend::TestBackend;
    use ratatui::crossterm::event::KeyEventState;
    use ratatui::Terminal;
    use statsfs_binary::{Layout, StatDesc};

    /// A reader of one blob in a file: `kvm` with two VMs of two stats each.
    fn reader(dir: &tempfile::TempDir) -> Reader {
        let names = [
            "exits",
            "halts",
            "vm1/exits",
            "vm1/halts",
            "vm2/exits",
            "vm2/halts",
        ];
        let descs: Vec<StatDesc> = names.iter().map(|n| StatDesc::counter(*n)).collect();
        let blob = Layout::new("kvm", &descs)
            .unwrap()
            .encode(&[30, 3, 10, 1, 20, 2])
            .unwrap();
        let path = dir.path().join("kvm.stats");
        std::fs::write(&path, blob).unwrap();
        Reader::open(path.to_str().unwrap()).unwrap()
    }

    fn args() -> ViewArgs {
        use clap::Parser;
        let cli = super::super::Cli::parse_from(["statsfs", "top", "x"]);
        match cli.command {
            super::super::Command::Top(t) => t.view,
            _ => unreachable!(),
        }
    }

    fn screen(app: &App, reader: &Reader) -> String {
        let mut t = Terminal::new(TestBackend::new(100, 12)).unwrap();
        t.draw(|f| draw(f, app, reader)).unwrap();
        let buf = t.backend().buffer().clone();
        let mut s = String::new();
        for y in 0..buf.area.height {
            for x in 0..buf.area.width {
                s.push_str(buf[(x, y)].symbol());
            }
            s.push('\n');
        }
        s
    }

    fn key(app: &mut App, reader: &Reader, code: KeyCode) -> Action {
        app.key(
            KeyEvent {
                code,
                modifiers: KeyModifiers::NONE,
                kind: KeyEventKind::Press,
                state: KeyEventState::NONE,
            },
            reader,
        )
    }

    #[test]
    fn keys_move_the_view_and_the_screen_shows_it() {
        let dir = tempfile::TempDir::new().unwrap();
        let reader = reader(&dir);
        let mut app = App::new(&args(), &reader).unwrap();
        let s = screen(&app, &reader);
        assert!(s.contains("— kvm  every 1.00 s  sort: total"), "{s}");
        assert!(
            s.lines().nth(2).unwrap().starts_with("exits"),
            "largest first: {s}"
        );
        assert!(s.contains(HELP.split("  ").next().unwrap()), "{s}");
        // Enter: the selected stat per child.
        key(&mut app, &reader, KeyCode::Enter);
        let s = screen(&app, &reader);
        assert!(s.contains("kvm: exits per child"), "{s}");
        assert!(s.lines().nth(2).unwrap().starts_with("vm2"), "{s}");
        // Back up, drill into vm1.
        key(&mut app, &reader, KeyCode::Char('u'));
        key(&mut app, &reader, KeyCode::Char('d'));
        assert!(screen(&app, &reader).contains("drill down into"));
        key(&mut app, &reader, KeyCode::Enter);
        let s = screen(&app, &reader);
        assert!(s.contains("— kvm/vm1  every"), "{s}");
        // A bad filter says why on the last line; the view stays.
        for c in "f(".chars() {
            key(&mut app, &reader, KeyCode::Char(c));
        }
        key(&mut app, &reader, KeyCode::Enter);
        let s = screen(&app, &reader);
        assert!(s.contains("--filter \"(\": unclosed group"), "{s}");
        assert!(app.view.filter.is_none());
        // Sort, zeros, reset, interval, help, quit.
        key(&mut app, &reader, KeyCode::Char('o'));
        key(&mut app, &reader, KeyCode::Char('z'));
        key(&mut app, &reader, KeyCode::Char('r'));
        key(&mut app, &reader, KeyCode::Char('+'));
        let s = screen(&app, &reader);
        assert!(
            s.contains("every 2.00 s  sort: rate  zeros skipped  since reset"),
            "{s}"
        );
        assert!(!s.contains("exits "), "all zero since the reset: {s}");
        key(&mut app, &reader, KeyCode::Char('h'));
        assert!(screen(&app, &reader).contains("double or halve"));
        key(&mut app, &reader, KeyCode::Char('x'));
        assert_eq!(key(&mut app, &reader, KeyCode::Char('q')), Action::Quit);
    }

    #[test]
    fn a_tiny_terminal_draws_without_panicking() {
        let dir = tempfile::TempDir::new().unwrap();
        let reader = reader(&dir);
        let app = App::new(&args(), &reader).unwrap();
        for (w, h) in [(1, 1), (10, 2), (200, 3)] {
            let mut t = Terminal::new(TestBackend::new(w, h)).unwrap();
            t.draw(|f| draw(f, &app, &reader)).unwrap();
        }
    }
}
