// The evaluator of Troupe's Jinja engine: renders a parsed template (tokenizers/jinja_ast.h) as jinja2's generated
// code does in transformers' ImmutableSandboxedEnvironment: scopes (a for-loop iteration, a macro call and a with
// block each see their enclosing scope but write their own), the `loop` object, macros and call blocks, the sandbox's
// attribute rules (environment.getattr / getitem: attributes before items, `_`-names and list/dict mutators refused).
// Not supported: recursive loops, template inheritance and includes (the parser rejects them).
#pragma once

#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "tokenizers/jinja_ast.h"

namespace troupe::tokenizers::jinja {

// jinja2's LoopContext over the items of a for loop, pulling the filtered items lazily (the `if` clause is evaluated
// item by item, interleaved with the body, as jinja2 does; `last`, `nextitem` and `length` look ahead).
struct LoopState {
  std::vector<Value> items;                  // the iterable's items
  size_t next_raw = 0;                       // next of `items` to test
  std::function<bool(const Value&)> filter;  // the `if` clause; empty for none
  std::deque<Value> ahead;                   // filtered items pulled early
  int64_t index0 = -1;
  Value current, before;
  std::optional<std::vector<Value>> changed_last;  // loop.changed()'s previous arguments

  std::optional<Value> pull();  // the next filtered item from the iterable
  std::optional<Value> next();  // advance: the next item, or nullopt at the end
  const Value* peek();          // the item after the current one, or nullptr
  int64_t length();
};

namespace detail {

// Variables of one scope; lookups fall through to the parent.
struct Scope {
  std::shared_ptr<Scope> parent;
  std::unordered_map<std::string, Value> vars;
  const Value* find(const std::string& name) const;
};

class Evaluator {
 public:
  Evaluator() = default;
  Evaluator(const Evaluator&) = delete;
  Evaluator& operator=(const Evaluator&) = delete;
  // Empties the scopes that hold macros (see macro_scopes_).
  ~Evaluator();

  // Renders `body` with `globals` as the outermost scope.
  std::string render(const Body& body, std::shared_ptr<Scope> globals);

  // The sandbox's environment.getattr / getitem (also used by filters' attribute lookups).
  Value getattr(const Value& obj, const std::string& name);
  Value getitem(const Value& obj, const Value& key);
  Value call(const Value& callee, Args& args);
  Value call_filter(const std::string& name, const Value& input, Args& args);
  bool call_test(const std::string& name, const Value& input, Args& args);

  // The line being evaluated (for error messages).
  int line() const { return line_; }

 private:
  enum class Flow { Normal, Break, Continue };

  Flow exec_body(const Body& body, const std::shared_ptr<Scope>& scope);
  Flow exec(const Stmt& s, const std::shared_ptr<Scope>& scope);
  Flow exec_for(const Stmt& s, const std::shared_ptr<Scope>& scope);
  void exec_output(const Stmt& s, const std::shared_ptr<Scope>& scope);
  std::string capture(const Body& body, const std::shared_ptr<Scope>& scope);
  Value make_macro(const std::string& name, const Signature& sig, const Body& body, std::shared_ptr<Scope> scope);
  // The scopes macros close over. A macro stored in the scope it closes over is a reference cycle (scope -> vars ->
  // macro -> scope) that leaked every scope up to the render's context on each render of a template defining a macro
  // (found by fuzz/fuzz_tokenizer_file under LeakSanitizer). A macro cannot outlive its render (it calls back into
  // this Evaluator), so the destructor empties these scopes, which breaks every such cycle.
  std::vector<std::shared_ptr<Scope>> macro_scopes_;
  Value invoke_macro(const std::string& name, const Signature& sig, const Body& body,
                     const std::shared_ptr<Scope>& closure, Args& args);
  void assign(const Target& t, const Value& v, Scope& scope, const std::shared_ptr<Scope>& lookup);

  // Evaluates `e` as jinja2's compiled code does: a foldable expression is first evaluated as jinja2's compile-time
  // folding would (failing slices are undefined); that value stands if it has a safe repr (or, for a printed
  // expression, `printed`), else the expression runs normally.
  Value eval(const Expr& e, const std::shared_ptr<Scope>& scope, bool printed = false);
  Value eval_node(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_name(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_compare(const Expr& e, const std::shared_ptr<Scope>& scope);
  Value eval_filter(const Expr& e, const std::shared_ptr<Scope>& scope, const Value* block_input);
  Args eval_args(const CallArgs& call, const std::shared_ptr<Scope>& scope);

  std::string out_;
  int line_ = 1;
  int macro_depth_ = 0;   // nested macro calls (a runaway recursion is an error, as in Python)
  bool folding_ = false;  // evaluating as jinja2's constant folding does
};

}  // namespace detail
}  // namespace troupe::tokenizers::jinja
