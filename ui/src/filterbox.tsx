// The query-string box: the filter language with autocomplete of keys (filterKeys) and values (topValues).
import { useEffect, useRef, useState } from 'preact/hooks';
import { gql } from './api';
import { applied, type FilterKey, keyText, matching, type Slot, slotAt, valueText } from './complete';

const KEYS_QUERY = 'query Keys { filterKeys(entity: SESSIONS) { name type kind } }';
const VALUES_QUERY =
  'query Values($key: String!) { topValues(entity: SESSIONS, key: $key, limit: 20) { values { value } } }';

interface Suggestion {
  label: string;
  insert: string;
  detail: string;
}

/** Keys once per page, values once per key: the box asks the API only when the caret enters a new slot. */
function useVocabulary() {
  const keys = useRef<Promise<FilterKey[]> | null>(null);
  const values = useRef(new Map<string, Promise<string[]>>());
  return {
    keys(): Promise<FilterKey[]> {
      keys.current ??= gql<{ filterKeys: FilterKey[] }>(KEYS_QUERY).then((d) => d.filterKeys, () => []);
      return keys.current;
    },
    values(key: string): Promise<string[]> {
      if (!values.current.has(key)) {
        const found = gql<{ topValues: { values: { value: string }[] } }>(VALUES_QUERY, { key }).then(
          (d) => d.topValues.values.map((v) => v.value),
          () => [], // a key without values (a number, an unknown key) offers none
        );
        values.current.set(key, found);
      }
      return values.current.get(key)!;
    },
  };
}

async function suggestionsFor(slot: Slot, vocabulary: ReturnType<typeof useVocabulary>): Promise<Suggestion[]> {
  if (slot.kind === 'value') {
    const values = await vocabulary.values(slot.key);
    return matching(values, (v) => v, slot.partial).map((v) => ({ label: v, insert: valueText(v), detail: slot.key }));
  }
  const keys = await vocabulary.keys();
  return matching(keys, (k) => k.name, slot.partial).map((k) => ({
    label: k.name,
    insert: keyText(k),
    detail: k.type.toLowerCase(),
  }));
}

export function FilterBox({ value, onSubmit }: { value: string; onSubmit: (query: string) => void }) {
  const [text, setText] = useState(value);
  const [caret, setCaret] = useState(value.length);
  const [open, setOpen] = useState(false);
  const [suggestions, setSuggestions] = useState<Suggestion[]>([]);
  const [active, setActive] = useState(0);
  const input = useRef<HTMLInputElement>(null);
  const vocabulary = useVocabulary();
  const slot = open ? slotAt(text, caret) : null;

  useEffect(() => setText(value), [value]);
  useEffect(() => {
    let current = true;
    if (slot) suggestionsFor(slot, vocabulary).then((found) => current && (setSuggestions(found), setActive(0)));
    else setSuggestions([]);
    return () => {
      current = false;
    };
  }, [slot?.kind, slot?.key, slot?.partial]);

  function take(suggestion: Suggestion) {
    const [next, at] = applied(text, caret, slot!, suggestion.insert);
    // set on the element at once, so a key typed right after lands at the new caret
    input.current!.value = next;
    input.current!.setSelectionRange(at, at);
    setText(next);
    setCaret(at);
    setOpen(false);
  }

  function onKeyDown(event: KeyboardEvent) {
    const shown = slot ? suggestions : [];
    if (event.key === 'ArrowDown' || event.key === 'ArrowUp') {
      event.preventDefault();
      setOpen(true);
      const step = event.key === 'ArrowDown' ? 1 : -1;
      setActive((active + step + shown.length) % Math.max(shown.length, 1));
    } else if ((event.key === 'Enter' || event.key === 'Tab') && shown.length > 0) {
      event.preventDefault();
      take(shown[active]);
    } else if (event.key === 'Escape') {
      setOpen(false);
    } else if (event.key === 'Enter') {
      event.preventDefault();
      setOpen(false);
      onSubmit(text.trim());
    }
  }

  const follow = (target: HTMLInputElement) => {
    setText(target.value);
    setCaret(target.selectionStart ?? target.value.length);
    setOpen(true);
  };
  const shown = slot ? suggestions : [];
  return (
    <div class="filterbox">
      <input
        ref={input}
        type="text" // not "search": its Escape clears the box, and here Escape closes the suggestions
        aria-label="Filter sessions"
        placeholder='browser = Chrome AND visited(path ^= "/checkout")'
        spellcheck={false}
        autocomplete="off"
        value={text}
        onInput={(e) => follow(e.currentTarget)}
        onClick={(e) => follow(e.currentTarget)}
        onKeyDown={onKeyDown}
        onBlur={() => setOpen(false)}
        role="combobox"
        aria-expanded={shown.length > 0}
        aria-controls="filter-suggestions"
      />
      <button type="button" onClick={() => onSubmit(text.trim())}>
        Filter
      </button>
      {shown.length > 0 && (
        <ul id="filter-suggestions" class="suggestions" role="listbox">
          {shown.map((s, i) => (
            <li
              key={s.label}
              role="option"
              aria-selected={i === active}
              onMouseDown={(e) => {
                e.preventDefault(); // keep the focus in the box
                take(s);
              }}
            >
              <span>{s.label}</span>
              <small>{s.detail}</small>
            </li>
          ))}
        </ul>
      )}
    </div>
  );
}
