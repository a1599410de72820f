"""The reference for Troupe's chat templates and Jinja engine: transformers' own compile and render functions
(transformers.utils.chat_template_utils), run by tests/tokenizers/{jinja,chat_template}_test.cpp.

  features IN.json OUT.json     IN: [{"template": str, "context": {...}}]. Renders each template with transformers'
                                compiled environment and `context` as the variables (as Template::render does).
  random OUT.json SEED N        Generates N random small templates (expressions over literals and a fixed context,
                                with operators, subscripts, slices, methods, filters, tests, conditionals, for/if/set;
                                and text with nested tags under random whitespace control) and renders them; writes {"template", "context"} with each result. Templates whose
                                output shows a Python memory address are left out.
  chat FIXTURES OUT.json SEED   Renders every tests/fixtures/chat_templates/*.json template over seeded conversations
                                (system or not, 1-5 turns, add_generation_prompt both ways, Unicode, quotes,
                                newlines, padding whitespace, empty and missing content, tools and tool calls,
                                non-alternating roles that templates reject) as apply_chat_template(tokenize=False)
                                does, and writes the inputs with the outputs.

Each result is {"output": str} or {"error": "Type: message"}, plus "raised": message when the template itself called
raise_exception (a plain jinja2 TemplateError).
"""
import copy
import glob
import json
import os
import random
import sys
import warnings

import jinja2.exceptions
from transformers.utils.chat_template_utils import _compile_jinja_template, render_jinja_template


def outcome(fn):
    try:
        return {"output": fn()}
    except Exception as e:  # noqa: BLE001 - any failure is a result the C++ side must reproduce
        result = {"error": f"{type(e).__name__}: {e}"}
        if type(e) is jinja2.exceptions.TemplateError:
            result["raised"] = str(e)
        return result


def features(path_in, path_out):
    with open(path_in, encoding="utf-8") as f:
        cases = json.load(f)
    results = [outcome(lambda c=c: _compile_jinja_template(c["template"]).render(**c["context"])) for c in cases]
    with open(path_out, "w", encoding="utf-8") as f:
        json.dump(results, f, ensure_ascii=False)


def token(value):
    return value["content"] if isinstance(value, dict) else value


def apply_chat_template(fixture, messages, add_generation_prompt, extra):
    """tokenizer.apply_chat_template(messages, tokenize=False, ...) without a tokenizer: its checks and None-dropping,
    the special tokens, then transformers' render_jinja_template."""
    if len(messages) == 0:
        raise ValueError("Cannot apply chat template to an empty conversation. Provide at least one message.")
    conversation = [{k: v for k, v in m.items() if v is not None} for m in messages]
    kwargs = {}
    for key in ("bos_token", "eos_token"):
        if token(fixture.get(key)) is not None:
            kwargs[key] = token(fixture[key])
    extra = dict(extra)
    tools = extra.pop("tools", None)
    documents = extra.pop("documents", None)
    kwargs.update(extra)
    rendered, _ = render_jinja_template(conversations=[conversation], tools=tools, documents=documents,
                                        chat_template=fixture["chat_template"],
                                        add_generation_prompt=add_generation_prompt, **kwargs)
    return rendered[0]


TEXTS = [
    "Hello, how are you?", "What is 2 + 2?", "Tell me a joke.", "  padded with spaces  ", "\nleading newline",
    "trailing newline\n", "multi\nline\n\ntext", "tab\tseparated", "quotes: 'single' and \"double\"",
    "back\\slash", "café naïve résumé", "東京と北京", "emoji 😀🚀", "ΣΟΦΟΣ σοφός", "Привет, мир", "עברית",
    "\u00a0non-breaking edges\u00a0", "\u3000ideographic space\u3000", "{{ not a template }} {% if %}",
    "<s>[INST] special tokens in text [/INST]</s>", "<|im_start|>user<|im_end|>", "", " ", "x" * 300,
    "A <think>hidden</think> visible answer", "reasoning done</think> final answer", "İstanbul ß ﬁ",
    "line1\r\nline2", "zero\u200bwidth", "<end_of_turn>",
]
TOOLS = [
    {"type": "function", "function": {
        "name": "get_current_weather", "description": "Get the current weather in a given location",
        "parameters": {"type": "object", "properties": {
            "location": {"type": "string", "description": "The city and state, e.g. San Francisco, CA"},
            "unit": {"type": "string", "enum": ["celsius", "fahrenheit"], "description": "The unit"}},
            "required": ["location"]}}},
    {"type": "function", "function": {
        "name": "search", "description": "Search the web for a query ☃",
        "parameters": {"type": "object", "properties": {
            "query": {"type": "string", "description": "  what to look for  "},
            "limit": {"type": "integer", "description": "How many results"},
            "strict": {"type": "boolean", "description": "Exact matches only"},
            "ratio": {"type": "number", "description": "A float"}},
            "required": ["query"]}}},
    # A union type: Hermes 3's json_to_python_type recurses forever on "null" (Python: RecursionError).
    {"type": "function", "function": {
        "name": "tag", "description": "Tag a note",
        "parameters": {"type": "object", "properties": {
            "tags": {"type": ["string", "null"], "description": "Optional tag"}}}}},
]
TOOL_TEMPLATES = ("llama3_2_instruct", "mistral_nemo_instruct_2407", "hermes3_llama3_1_tool_use",
                  "deepseek_r1_distill_qwen", "cohere_command_r7b_tool_use", "gpt_oss_20b")
# A schema with arrays, unions, enums, defaults and nullables (gpt-oss renders it as TypeScript).
RICH_TOOL = {"type": "function", "function": {
    "name": "book", "description": "Book a table",
    "parameters": {"type": "object", "properties": {
        "names": {"type": "array", "items": {"type": "string"}, "description": "Guests"},
        "slots": {"type": "array", "items": {"type": "object", "properties": {"at": {"type": "integer"}}},
                  "description": "Time slots", "nullable": True},
        "any_list": {"type": "array", "description": "Anything"},
        "mode": {"type": "string", "enum": ["fast", "slow"], "default": "fast", "description": "Mode"},
        "when": {"oneOf": [{"type": "string", "description": "ISO date"}, {"type": "integer", "default": 0}],
                 "description": "When", "default": "now"},
        "pair": {"type": ["object", "object"], "description": "A union"},
        "note": {"type": "string", "nullable": True, "description": "Free text"},
        "ok": {"type": "boolean", "default": False, "description": "Confirmed"}},
        "required": ["names"]}}}
DOCUMENTS = [{"title": "Tall penguins", "text": "Emperor penguins are the tallest growing up to 122 cm in height."},
             {"title": "Penguin habitats", "text": "Emperor penguins only live in Antarctica — «froid»."}]


def text(rng):
    r = rng.random()
    if r < 0.55:
        return rng.choice(TEXTS)
    if r < 0.9:
        return " ".join(rng.choice(TEXTS) for _ in range(rng.randint(2, 3)))
    return rng.choice(["", " ", "\n"])


def tool_call(rng, k):
    args = {"location": rng.choice(["Paris", "東京", "São Paulo"]), "unit": "celsius"}
    if rng.random() < 0.5:
        args = {"query": rng.choice(TEXTS), "limit": rng.randint(1, 9)}
    return {"id": "call" + "%05d" % rng.randint(0, 99999) if rng.random() < 0.9 else "bad",
            "type": "function",
            "function": {"name": rng.choice(["get_current_weather", "search"]),
                         "arguments": json.dumps(args) if k == "deepseek_r1_distill_qwen" else args}}


def conversation(rng, name):
    messages = []
    if rng.random() < 0.45:
        messages.append({"role": "system", "content": text(rng)})
    turns = rng.randint(1, 5)
    for i in range(turns):
        messages.append({"role": "user", "content": text(rng)})
        if i < turns - 1 or rng.random() < 0.35:
            messages.append({"role": "assistant", "content": text(rng)})
    r = rng.random()
    if r < 0.08:  # non-alternating roles (Llama 2, Mistral, Gemma raise)
        messages.insert(rng.randrange(len(messages) + 1), {"role": rng.choice(["user", "assistant"]),
                                                             "content": text(rng)})
    elif r < 0.12:  # a system message in the middle, or an unknown role
        messages.insert(rng.randrange(1, len(messages) + 1), {"role": rng.choice(["system", "tool_results", "bot"]),
                                                                "content": text(rng)})
    elif r < 0.16:  # missing / null content, extra fields
        m = rng.choice(messages)
        if rng.random() < 0.5:
            m["content"] = None
        else:
            del m["content"]
        messages[-1]["name"] = "extra field"
    elif r < 0.19:  # content as a list of blocks
        rng.choice(messages)["content"] = [{"type": "text", "text": text(rng)}]
    elif r < 0.24:  # reasoning fields are aliased before rendering (thinking / reasoning_content / reasoning)
        fields = rng.choice([{"reasoning_content": "thinking…"}, {"thinking": "hmm"}, {"reasoning": "so"},
                             {"thinking": "own", "reasoning_content": "rc"}, {"reasoning_content": None, "reasoning": "r"}])
        messages.append({"role": "assistant", "content": text(rng), **fields})
    if name in TOOL_TEMPLATES and rng.random() < 0.3:
        calls = [tool_call(rng, name) for _ in range(rng.choice([1, 1, 2]))]
        content = None if name == "deepseek_r1_distill_qwen" or rng.random() < 0.5 else ""
        messages.append({"role": "assistant", "content": content, "tool_calls": calls})
        for c in calls:
            messages.append({"role": "tool", "tool_call_id": c["id"],
                             "content": rng.choice(['{"temperature": 22}', "sunny", text(rng)])})
        if rng.random() < 0.5:
            messages.append({"role": "assistant", "content": text(rng)})
    return messages


def extra_context(rng, name):
    extra = {}
    if name in TOOL_TEMPLATES and rng.random() < 0.35:
        extra["tools"] = copy.deepcopy(rng.sample(TOOLS[:2], rng.randint(1, 2)) + TOOLS[2:] * (rng.random() < 0.1))
    if name == "llama3_2_instruct":
        if rng.random() < 0.7:
            extra["date_string"] = rng.choice(["26 Jul 2024", "1 Jan 2025"])  # else strftime_now() of today
        if rng.random() < 0.2:
            extra["tools_in_user_message"] = False
    if name == "hermes3_llama3_1_tool_use" and "tools" not in extra:
        extra["tools"] = copy.deepcopy(TOOLS[:1])
    if name == "gpt_oss_20b":
        if "tools" in extra and rng.random() < 0.5:
            extra["tools"].append(copy.deepcopy(RICH_TOOL))
        if rng.random() < 0.3:
            extra["reasoning_effort"] = rng.choice(["low", "high"])
        if rng.random() < 0.2:
            extra["model_identity"] = "You are Troupe's test model."
        if rng.random() < 0.3:
            extra["builtin_tools"] = rng.sample(["browser", "python"], rng.randint(1, 2))
    if name == "cohere_command_r7b_tool_use":
        if rng.random() < 0.3:
            extra["documents"] = copy.deepcopy(DOCUMENTS[: rng.randint(1, 2)])
        if rng.random() < 0.3:
            extra["enable_citations"] = True
    return extra


def chat(fixtures_dir, path_out, seed):
    rng = random.Random(seed)
    cases = []
    for path in sorted(glob.glob(os.path.join(fixtures_dir, "*.json"))):
        name = os.path.splitext(os.path.basename(path))[0]
        with open(path, encoding="utf-8") as f:
            fixture = json.load(f)
        for _ in range(70):
            messages = conversation(rng, name)
            extra = extra_context(rng, name)
            for add_generation_prompt in (False, True):
                case = {"fixture": name, "messages": messages, "add_generation_prompt": add_generation_prompt,
                        "extra": extra}
                case.update(outcome(lambda: apply_chat_template(fixture, copy.deepcopy(messages),
                                                                add_generation_prompt, extra)))
                cases.append(case)
        empty = {"fixture": name, "messages": [], "add_generation_prompt": True, "extra": {}}
        empty.update(outcome(lambda: apply_chat_template(fixture, [], True, {})))
        cases.append(empty)
    with open(path_out, "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False)


RANDOM_CONTEXT = {
    "xs": [3, 1, 2, 2], "d": {"b": 2, "a": 1, "items": "k"}, "s": "Héllo, World", "n": None, "f": 2.5, "t": True,
    "e": "", "u": "ΣΑΣ ßtraße", "users": [{"name": "Ann", "age": 30}, {"name": "bob", "age": 25, "x": None}],
    "nested": {"k": [1, {"z": "deep"}]},
}
ATOMS = ["0", "1", "2", "-3", "300", "0.5", "-2.25", "1e20", "3.0", "''", "'a'", "'Héllo W'", "' pad '", "'ΣΑΣ'",
         "'x,y'", "'A b-c'", "'2'", "none", "true", "false", "xs", "d", "s", "n", "f", "t", "e", "u", "users",
         "nested", "missing", "[]", "[1, 'a']", "(1, 2)", "{'a': 1}", "range(3)"]
ATTRS = ["a", "b", "items", "keys", "name", "age", "k", "z", "upper", "0", "x"]
METHODS = ["upper()", "lower()", "strip()", "split()", "split(',')", "startswith('H')", "endswith('d')",
           "replace('l', 'L')", "items()", "keys()", "values()", "get('a')", "get('q', 0)", "title()",
           "count(2)", "index(1)", "find('o')", "capitalize()", "rstrip('d')", "lstrip()", "join(['x', 'y'])"]
FILTERS = ["length", "upper", "lower", "trim", "title", "capitalize", "first", "last", "list", "string", "int", "float",
           "abs", "round", "round(1)", "sort|list", "reverse|list", "unique|list", "join(',')", "join", "tojson",
           "tojson(indent=1)", "default('z')", "d(1, true)", "map('string')|list", "select('odd')|list",
           "reject('none')|list", "selectattr('age')|list", "rejectattr('x')|list", "map(attribute='name')|list",
           "dictsort", "items|list", "sum", "min", "max", "wordcount", "replace('a', 'b')", "truncate(5)",
           "center(7)", "indent(2)", "batch(2)|list", "slice(2)|list", "count", "attr('name')", "escape",
           "sort(attribute='age')|list", "sum(attribute='age')", "trim('H')", "int(7)", "float(1.5)"]
TESTS = ["defined", "undefined", "none", "string", "number", "integer", "float", "mapping", "iterable", "sequence",
         "odd", "even", "divisibleby 2", "eq 1", "in xs", "boolean", "true", "false", "callable", "gt 1", "lt 'b'"]
SUBSCRIPTS = ["0", "1", "-1", "5", "k", "'a'", "true", "1:", ":-1", "::-1", "1:2", "::2"]
BINOPS = ["+", "-", "*", "/", "//", "%", "**", "~", "==", "!=", "<", "<=", ">", ">=", "and", "or", "in", "not in"]


def random_expr(rng, depth):
    if depth <= 0 or rng.random() < 0.25:
        return rng.choice(ATOMS)
    r = rng.random()
    sub = lambda: random_expr(rng, depth - 1)  # noqa: E731
    if r < 0.22:
        return f"({sub()} {rng.choice(BINOPS)} {sub()})"
    if r < 0.30:
        return f"({rng.choice(['-', 'not '])}{sub()})"
    if r < 0.40:
        return f"{sub()}[{rng.choice(SUBSCRIPTS)}]"
    if r < 0.48:
        return f"{sub()}.{rng.choice(ATTRS)}"
    if r < 0.58:
        return f"{sub()}.{rng.choice(METHODS)}"
    if r < 0.78:
        return f"({sub()}|{rng.choice(FILTERS)})"
    if r < 0.88:
        return f"({sub()} is {rng.choice(['', 'not '])}{rng.choice(TESTS)})"
    if r < 0.94:
        return f"({sub()} if {sub()} else {sub()})"
    return f"[{sub()}, {sub()}]"


TEXTS_WS = ["", " ", "  ", "\n", "\n\n", " \n ", "\t", "a", " b ", "\u00a0", "x\n  ", "\r\n", "\u3000\n"]


def random_tag(rng, body):
    """A block or print tag with random whitespace control around `body` (nested text and tags)."""
    lo, ro = rng.choice(["", "-", "+"]), rng.choice(["", "-", "+"])
    r = rng.random()
    if r < 0.3:
        return "{%" + lo + " if " + rng.choice(["true", "false", "xs", "n"]) + " " + ro + "%}" + body + \
            "{%" + rng.choice(["", "-", "+"]) + " else " + rng.choice(["", "-", "+"]) + "%}" + rng.choice(TEXTS_WS) + \
            "{%" + rng.choice(["", "-"]) + " endif " + rng.choice(["", "-", "+"]) + "%}"
    if r < 0.55:
        return "{%" + lo + " for v in xs " + ro + "%}" + body + "{{ v }}" + "{%" + rng.choice(["", "-", "+"]) + \
            " endfor " + rng.choice(["", "-", "+"]) + "%}"
    if r < 0.7:
        return "{#" + rng.choice(["", "-", "+"]) + " note " + rng.choice(["", "-", "+"]) + "#}" + body
    if r < 0.8:
        return "{%" + lo + " set q = 1 " + ro + "%}" + body
    if r < 0.88:
        return "{%" + lo + " raw " + ro + "%}" + body.replace("{", "(") + "{%" + rng.choice(["", "-"]) + " endraw " + \
            rng.choice(["", "-", "+"]) + "%}"
    return "{{" + rng.choice(["", "-"]) + " 'p' " + rng.choice(["", "-"]) + "}}" + body


def random_whitespace_template(rng, depth=2):
    parts = []
    for _ in range(rng.randint(1, 4)):
        parts.append(rng.choice(TEXTS_WS))
        if depth > 0 and rng.random() < 0.7:
            parts.append(random_tag(rng, random_whitespace_template(rng, depth - 1)))
    return "".join(parts)


def random_template(rng):
    if rng.random() < 0.25:
        return random_whitespace_template(rng)
    expr = random_expr(rng, rng.randint(1, 4))
    r = rng.random()
    if r < 0.6:
        return "{{ " + expr + " }}"
    if r < 0.75:
        return "{% for v in " + expr + " %}{{ v }}{{ loop.index }},{% else %}empty{% endfor %}"
    if r < 0.9:
        return "{% if " + expr + " %}T{% else %}F{% endif %}"
    return "{% set q = " + expr + " %}[{{ q }}]{{ q is defined }}"


def random_cases(path_out, seed, n):
    warnings.simplefilter("ignore", SyntaxWarning)  # jinja2's generated code subscripts constants
    rng = random.Random(seed)
    cases = []
    while len(cases) < n:
        tmpl = random_template(rng)
        result = outcome(lambda: _compile_jinja_template(tmpl).render(**copy.deepcopy(RANDOM_CONTEXT)))
        if " at 0x" in result.get("output", ""):
            continue  # Python printed an object's address (Troupe refuses to print those)
        cases.append({"template": tmpl, "context": RANDOM_CONTEXT, **result})
    with open(path_out, "w", encoding="utf-8") as f:
        json.dump(cases, f, ensure_ascii=False)


if __name__ == "__main__":
    if sys.argv[1] == "features":
        features(sys.argv[2], sys.argv[3])
    elif sys.argv[1] == "random":
        random_cases(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
    elif sys.argv[1] == "chat":
        chat(sys.argv[2], sys.argv[3], int(sys.argv[4]))
    else:
        sys.exit(f"unknown mode {sys.argv[1]!r}")
