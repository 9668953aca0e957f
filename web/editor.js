// The editor of `modelspec serve`'s page: CodeMirror 6 with the nnspec language, built by build.mjs into
// modelspec/assets/editor.js, one script that defines `window.NnspecEditor`:
//
//   create(parent, {doc, readOnly, onChange, language, wrap})  -> an EditorView in parent (parent.nnspecView)
//   getText(view), setText(view, text)
//   setDiagnostics(view, diagnostics)   modelspec's diagnostics (modelspec/diagnostics.py), underlined
//   highlightLine(view, line)           one highlighted line (1-based; null clears it)
//   EditorView                          CodeMirror's own, for tests and debugging
import { basicSetup } from "codemirror";
import { python } from "@codemirror/lang-python";
import { StreamLanguage, indentUnit } from "@codemirror/language";
import { lintGutter, setDiagnostics as lintDiagnostics } from "@codemirror/lint";
import { Annotation, EditorState, StateEffect, StateField, findClusterBreak } from "@codemirror/state";
import { Decoration, EditorView } from "@codemirror/view";

// ---- the nnspec language (grammar/nnspec.lark) ----

// The reserved words, by the highlighting tag each gets. `train` is a keyword only where it begins a
// top-level item, as modelspec/parse.py's lexer step reads it, so it is not here.
const WORDS = {
  model: "definitionKeyword", block: "definitionKeyword", const: "definitionKeyword",
  param: "definitionKeyword", buffer: "definitionKeyword", forward: "definitionKeyword",
  import: "moduleKeyword", from: "moduleKeyword",
  return: "controlKeyword", for: "controlKeyword", in: "controlKeyword", if: "controlKeyword",
  else: "controlKeyword",
  and: "operatorKeyword", or: "operatorKeyword", not: "operatorKeyword", is: "operatorKeyword",
  True: "bool", False: "bool", None: "null",
};
// What the name after a definition keyword defines: a class of the generated code, or a value.
const DEFINES = { model: "className.definition", block: "className.definition" };
const NAMESPACES = new Set(["nn", "F", "torch"]);
const BRACKETS = { "(": "paren", ")": "paren", "[": "squareBracket", "]": "squareBracket", "{": "brace", "}": "brace" };

// The lexemes, as the grammar's terminals (NAME, INT, FLOAT, STRING, COMMENT and the operators) spell them.
const NUMBER = /^(?:0[xX][0-9a-fA-F_]+|\d[\d_]*(?:\.[\d_]*)?(?:[eE][-+]?\d+)?|\.\d[\d_]*(?:[eE][-+]?\d+)?)/;
const STRING = /^(?:"(?:[^"\\]|\\.)*"?|'(?:[^'\\]|\\.)*'?)/;
const NAME = /^[A-Za-z_][A-Za-z0-9_]*/;
const OPERATOR = /^(?:\*\*|\/\/|==|!=|<=|>=|\.\.\.|[-+*/%@&|^~<>=])/;

// Where the tokenizer is, line to line: how deep in brackets; where a shape (`x: [B, 3, 32, 32]`, `Long[B]`)
// began, -1 outside one; the last token and its tag, since a name's role depends on them.
const startState = () => ({ depth: 0, shapeAt: -1, last: "", lastTag: null });

function token(stream, state) {
  if (stream.eatSpace()) return null;
  const tag = lexeme(stream, state);
  state.last = stream.current();
  state.lastTag = tag;
  return tag;
}

function lexeme(stream, state) {
  if (stream.match(/^#.*/)) return "comment";
  if (stream.match(STRING)) return "string";
  if (stream.match(NUMBER)) return "number";
  if (stream.match(NAME)) return name(stream, state, stream.current());
  if (stream.match(/^[()[\]{}]/)) return bracket(stream.current(), state);
  if (stream.match(OPERATOR)) return "operator";
  if (stream.match(".")) return "derefOperator";
  const ch = stream.next();
  return ch === ":" ? "punctuation" : ch === "," || ch === ";" ? "separator" : null;
}

// A name's tag, from the word itself and what came before it: a keyword; `_`, an argument inferred from the
// input's shape; a name that a keyword or `=` defines; a dim of a shape or a dtype before one; a layer or block
// (capitalised); `nn.`, `F.` or `torch.`; an attribute.
function name(stream, state, word) {
  if (word === "train" && state.depth === 0 && firstOnLine(stream)) return "definitionKeyword";
  if (Object.hasOwn(WORDS, word)) return WORDS[word];
  if (word === "_") return "atom";
  if (WORDS[state.last] === "definitionKeyword" || state.last === "train") {
    return DEFINES[state.last] || "variableName.definition";
  }
  if (state.shapeAt >= 0 || (state.last === ":" && stream.match(/^\s*\[/, false))) return "typeName";
  if (/^[A-Z]/.test(word) && !NAMESPACES.has(word)) return "className";
  if (NAMESPACES.has(word) && stream.match(/^\s*\./, false)) return "namespace";
  if (state.last === ".") return "propertyName";
  if (startsStatement(stream, state) && stream.match(/^\s*=(?!=)/, false)) return "variableName.definition";
  return "variableName";
}

function startsStatement(stream, state) {
  return state.last === ";" || state.last === "{" || firstOnLine(stream);
}

const firstOnLine = (stream) => stream.string.slice(0, stream.start).trim() === "";

// Brackets keep the depth, which indents, and open and close shapes: a `[` after `:` or after a dtype begins one.
function bracket(ch, state) {
  if ("([{".includes(ch)) {
    if (ch === "[" && state.shapeAt < 0 && (state.last === ":" || state.lastTag === "typeName")) {
      state.shapeAt = state.depth;
    }
    state.depth++;
  } else {
    state.depth = Math.max(0, state.depth - 1);
    if (state.depth === state.shapeAt) state.shapeAt = -1;
  }
  return BRACKETS[ch];
}

// A line indents one unit a bracket open before it, one less when it begins by closing one.
const indent = (state, textAfter, cx) => Math.max(0, state.depth - (/^[)\]}]/.test(textAfter) ? 1 : 0)) * cx.unit;

const nnspec = StreamLanguage.define({
  name: "nnspec", startState, token, indent,
  languageData: {
    commentTokens: { line: "#" }, closeBrackets: { brackets: ["(", "[", "{", '"', "'"] },
    indentOnInput: /^\s*[)\]}]$/,  // a line that begins by closing a bracket goes one unit left as it is typed
  },
});

const LANGUAGES = { nnspec: () => nnspec, python: () => python() };

// ---- the highlighted line ----

const setHighlight = StateEffect.define();  // the position of the line's start, or null
const highlightMark = Decoration.line({ class: "cm-ms-highlight" });
const highlightField = StateField.define({
  create: () => Decoration.none,
  update(deco, tr) {
    deco = deco.map(tr.changes);
    for (const e of tr.effects) {
      if (e.is(setHighlight)) deco = e.value === null ? Decoration.none : Decoration.set([highlightMark.range(e.value)]);
    }
    return deco;
  },
  provide: (field) => EditorView.decorations.from(field),
});

const theme = EditorView.theme({
  ".cm-line.cm-ms-highlight": { backgroundColor: "#fff1a8" },
  ".cm-ms-hint": { marginTop: "3px", color: "#555" },
});

// ---- the API ----

// Marks the transactions of setText, which onChange does not hear: the page sets the text it already knows.
const fromSetText = Annotation.define();

function create(parent, { doc = "", readOnly = false, onChange = null, language = "nnspec", wrap = true } = {}) {
  if (!Object.hasOwn(LANGUAGES, language)) {
    throw new Error(`NnspecEditor: unknown language ${JSON.stringify(language)} (nnspec or python)`);
  }
  const extensions = [basicSetup, LANGUAGES[language](), lintGutter(), highlightField, theme,
    indentUnit.of("    "),  // as `modelspec fmt` and the printed code indent
    EditorState.readOnly.of(readOnly)];
  if (wrap) extensions.push(EditorView.lineWrapping);  // a long comment or --explain line wraps in a narrow panel
  if (onChange) {
    extensions.push(EditorView.updateListener.of((update) => {
      if (update.transactions.some((tr) => tr.docChanged && !tr.annotation(fromSetText))) {
        onChange(update.state.doc.toString());
      }
    }));
  }
  const view = new EditorView({ doc, extensions, parent });
  parent.nnspecView = view;
  return view;
}

const getText = (view) => view.state.doc.toString();

// The whole text replaced, as one change of the part that differs (the text between the common prefix and the
// common suffix): what is before and after it keeps its selection, highlight, underlines and scroll position.
// It does not call onChange. It is one step of the undo history, as an edit.
function setText(view, text) {
  const old = view.state.doc.toString();
  const most = Math.min(old.length, text.length);
  let start = 0, end = 0;
  while (start < most && old.charCodeAt(start) === text.charCodeAt(start)) start++;
  while (end < most - start && old.charCodeAt(old.length - 1 - end) === text.charCodeAt(text.length - 1 - end)) end++;
  if (start === old.length && start === text.length) return;
  view.dispatch({
    changes: { from: start, to: old.length - end, insert: text.slice(start, text.length - end) },
    annotations: fromSetText.of(true),
  });
}

// The document offset of a 1-based line and column, the column counted in code points as Python counts a str's
// characters (an emoji is one, where the document counts two UTF-16 units); a place past the end of its line
// is the line's end, one past the document's end is the document's end.
function offset(doc, line, column) {
  if (line > doc.lines) return doc.length;
  const { from, text } = doc.line(Math.max(1, line));
  let at = 0;
  for (let n = 1; n < column && at < text.length; n++) at += text.codePointAt(at) > 0xffff ? 2 : 1;
  return from + at;
}

// modelspec's diagnostic as CodeMirror's: its range converted and at least one character (the next one, or the
// last of its line when it is at a line's end; an empty line keeps a point); the tooltip says the code and the
// message, and the hint below them. A diagnostic of another file (its `path` not null: an imported file) is
// shown at the start of line 1, its message led by the place in that file, so that its error is not lost.
function toLint(doc, d) {
  const foreign = d.path !== null && d.path !== undefined;
  let from = foreign ? 0 : offset(doc, d.line, d.column);
  let to = foreign ? 0 : Math.max(from, offset(doc, d.end_line, d.end_column));
  if (from === to) {
    const line = doc.lineAt(from);
    if (from < line.to) to = line.from + findClusterBreak(line.text, from - line.from, true);
    else if (from > line.from) from = line.from + findClusterBreak(line.text, from - line.from, false);
  }
  const said = (foreign ? `${d.path}:${d.line}:${d.column}: ` : "") + d.message;
  return {
    from, to, severity: d.severity === "warning" ? "warning" : "error",
    message: `${d.code} ${said}` + (d.hint ? `\nhint: ${d.hint}` : ""),
    renderMessage: () => tooltip(d.code, said, d.hint),
  };
}

function tooltip(code, said, hint) {
  const box = element("div", "");
  box.append(element("strong", code), " " + said);
  if (hint) box.append(element("div", `hint: ${hint}`, "cm-ms-hint"));
  return box;
}

function element(tag, text, className = "") {
  const made = document.createElement(tag);
  made.textContent = text;
  made.className = className;
  return made;
}

function setDiagnostics(view, diagnostics) {
  const doc = view.state.doc;
  view.dispatch(lintDiagnostics(view.state, diagnostics.map((d) => toLint(doc, d))));
}

// The line highlighted (the one before it no longer), scrolled to the middle, the cursor at its start; a line
// past the document's end is its last. The editor does not take the focus.
function highlightLine(view, line) {
  if (line === null || line === undefined) {
    view.dispatch({ effects: setHighlight.of(null) });
    return;
  }
  const doc = view.state.doc;
  const at = doc.line(Math.min(Math.max(1, Math.trunc(line)), doc.lines)).from;
  view.dispatch({
    selection: { anchor: at },
    effects: [setHighlight.of(at), EditorView.scrollIntoView(at, { y: "center" })],
  });
}

globalThis.NnspecEditor = { create, getText, setText, setDiagnostics, highlightLine, EditorView };
