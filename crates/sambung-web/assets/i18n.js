// The UI's words in the reader's language: a catalogue per language (English, Bahasa
// Indonesia) served by the server from crates/sambung-i18n/locales, chosen by the user's
// setting, else this browser's languages. Static markup names its text with `data-i18n`
// attributes; scripts call `t`.

/** The languages the UI speaks, by code. */
export const LOCALES = ["en", "id"];

let catalogue = {};
/** The language in use (`en` or `id`); `document.documentElement.lang` follows it. */
export let locale = "en";

/** The language this browser prefers among ours (`navigator.languages`, as Accept-Language). */
export function preferredLocale() {
  const chosen = localStorage.getItem("sambung.locale");
  if (LOCALES.includes(chosen)) return chosen;
  for (const tag of navigator.languages || [navigator.language]) {
    const code = String(tag).toLowerCase().split("-")[0];
    // "in" is the old code for Indonesian, still sent by some systems.
    if (code === "in") return "id";
    if (LOCALES.includes(code)) return code;
  }
  return "en";
}

/** Load `code`'s catalogue and make it the language in use; the page's markup follows. */
export async function useLocale(code) {
  const wanted = LOCALES.includes(code) ? code : "en";
  if (wanted === locale && Object.keys(catalogue).length) return;
  const response = await fetch(`/assets/locales/${wanted}.json`);
  if (!response.ok) throw new Error(`the ${wanted} catalogue did not load (${response.status})`);
  catalogue = await response.json();
  locale = wanted;
  document.documentElement.lang = wanted;
  localize(document);
}

/** The text of `key` with `{name}` replaced by `args.name` (numbers formatted for the
 * language). A key missing from the catalogue shows as itself, and says so in the console. */
export function t(key, args = {}) {
  let text = catalogue[key];
  if (text === undefined) {
    console.warn(`no text for ${key} in ${locale}`);
    text = key;
  }
  return text.replace(/\{(\w+)\}/g, (whole, name) =>
    name in args ? (typeof args[name] === "number" ? number(args[name]) : String(args[name])) : whole,
  );
}

/** `key.one` for one, else `key.other`, with `{n}` the count: "1 reply", "3 replies". */
export const plural = (key, n, args = {}) => t(`${key}.${n === 1 ? "one" : "other"}`, { ...args, n });

/** Give the markup under `root` its text: `data-i18n` (text), `data-i18n-placeholder`,
 * `data-i18n-aria-label`, `data-i18n-title` and `data-i18n-content` (attributes). */
export function localize(root) {
  for (const node of root.querySelectorAll("[data-i18n]")) node.textContent = t(node.dataset.i18n);
  for (const attribute of ["placeholder", "aria-label", "title", "content"]) {
    const data = `i18n${attribute.replace(/(^|-)(\w)/g, (_, __, c) => c.toUpperCase())}`;
    for (const node of root.querySelectorAll(`[data-i18n-${attribute}]`)) node.setAttribute(attribute, t(node.dataset[data]));
  }
}

/** A number as the language writes it (1,234.5 / 1.234,5). */
export const number = (n, options) => Number(n).toLocaleString(locale, options);

/** A size in bytes as the language writes it: "0 bytes", "820 kB", "4,2 MB", "1.1 GB". */
export function bytes(n) {
  const [value, unit] = n >= 1e9 ? [n / 1e9, "gigabyte"] : n >= 1e6 ? [n / 1e6, "megabyte"] : n >= 1e3 ? [n / 1e3, "kilobyte"] : [n, "byte"];
  // Bytes in full: the short form of "byte" takes no plural in English ("0 byte").
  const unitDisplay = unit === "byte" ? "long" : "short";
  return new Intl.NumberFormat(locale, { style: "unit", unit, unitDisplay, maximumFractionDigits: 1 }).format(value);
}

/** A moment for people, in the language: "5 Des 2026 10.30". */
export const when = (iso) => (iso ? new Date(iso).toLocaleString(locale, { dateStyle: "medium", timeStyle: "short" }) : "");

/** A time of day, or the date too when it is not today. */
export function shortTime(iso) {
  const at = new Date(iso);
  const today = at.toDateString() === new Date().toDateString();
  return today
    ? at.toLocaleTimeString(locale, { hour: "2-digit", minute: "2-digit" })
    : at.toLocaleString(locale, { dateStyle: "medium", timeStyle: "short" });
}
