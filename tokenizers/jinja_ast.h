// The syntax tree of Troupe's Jinja engine, as jinja2's parser builds it (jinja2/nodes.py), restricted to the
// statements chat templates use: output, if, for (with else and a filter `if`), set (incl. namespace attributes and
// block sets), macro, call, filter blocks, with, break/continue and transformers' {% generation %}.
#pragma once

#include <memory>
#include <string>
#include <vector>

#include "tokenizers/jinja_value.h"

namespace troupe::tokenizers::jinja::detail {

enum class ExprKind {
  Const,     // constant
  Name,      // name
  List,      // items
  Tuple,     // items
  Dict,      // items: key0, value0, key1, value1, ...
  GetAttr,   // a.name
  GetItem,   // a[b]
  Slice,     // a[b:c:d] (null parts are omitted bounds)
  Call,      // a(call)
  Filter,    // a|name(call); a is null in a filter block or block set (the body is the input)
  Test,      // a is name(call)
  Neg,       // -a
  Pos,       // +a
  Not,       // not a
  Binary,    // a op b
  Concat,    // items[0] ~ items[1] ~ ...
  Compare,   // items[0] ops[0] items[1] ops[1] items[2] ...
  And,       // a and b
  Or,        // a or b
  CondExpr,  // b if a else c (c null: undefined)
};
enum class BinOp { Add, Sub, Mul, Div, FloorDiv, Mod, Pow };
enum class CmpOp { Eq, Ne, Lt, Le, Gt, Ge, In, NotIn };

struct Expr;
using ExprPtr = std::unique_ptr<Expr>;

struct Keyword {
  std::string name;
  ExprPtr value;
};

struct CallArgs {
  std::vector<ExprPtr> args;
  std::vector<Keyword> kwargs;
  ExprPtr dyn_args;    // *args
  ExprPtr dyn_kwargs;  // **kwargs
};

struct Expr {
  ExprKind kind = ExprKind::Const;
  int line = 1;
  Value constant;
  std::string name;
  std::vector<ExprPtr> items;
  std::vector<CmpOp> cmp_ops;
  ExprPtr a, b, c, d;
  BinOp op = BinOp::Add;
  CallArgs call;
  bool soft = false;  // a filter/test inside an if or conditional expression: an unknown name fails only when run
  // jinja2 folds expressions without names or calls at compile time (Expr.as_const), where a failing slice reads as
  // undefined (environment.getitem) instead of raising: see Evaluator::eval.
  bool foldable = false;
};

// An assignment target: a name, a tuple of targets, or a namespace attribute (ns.attr).
struct Target {
  enum class Kind { Name, Tuple, NsAttr } kind = Kind::Name;
  std::string name;
  std::string attr;
  std::vector<Target> items;
  int line = 1;
};

enum class StmtKind {
  Output,
  If,
  For,
  Set,
  SetBlock,
  Macro,
  CallBlock,
  FilterBlock,
  With,
  Break,
  Continue,
  Generation
};

struct Stmt;
using Body = std::vector<std::unique_ptr<Stmt>>;

// Template text or a printed expression.
struct OutputPart {
  std::string text;
  ExprPtr expr;  // null for text
};

// Parameters of a macro or of a call block's caller.
struct Signature {
  std::vector<std::string> params;
  std::vector<ExprPtr> defaults;  // for the last defaults.size() params
  bool catch_varargs = false;     // the body reads `varargs`
  bool catch_kwargs = false;      // the body reads `kwargs`
  bool caller = false;            // the body reads `caller`
};

struct Stmt {
  StmtKind kind = StmtKind::Output;
  int line = 1;
  std::vector<OutputPart> parts;                   // Output
  std::vector<std::pair<ExprPtr, Body>> branches;  // If: (test, body) for if and each elif
  Target target;                                   // For, Set, SetBlock
  std::vector<Target> targets;                     // With
  std::vector<ExprPtr> values;                     // With
  ExprPtr expr;                                    // For: iterable; Set: value; CallBlock: call; FilterBlock,
                                                   // SetBlock: filter (null input)
  ExprPtr filter;                                  // For: the `if` clause
  Body body;
  Body else_body;       // If, For
  std::string name;     // Macro
  Signature signature;  // Macro, CallBlock
};

}  // namespace troupe::tokenizers::jinja::detail
