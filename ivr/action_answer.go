package ivr

import "context"

func init() { register("answer", func() Action { return &AnswerAction{} }) }

// AnswerAction answers the call (a no-op when it is already answered).
type AnswerAction struct {
	linearAction `yaml:"-"`
	noPrompts    `yaml:"-"`
	noVars       `yaml:"-"`
}

// Name implements Action.
func (*AnswerAction) Name() string { return "answer" }

func (*AnswerAction) check(*stepCheck) {}

func (*AnswerAction) run(ctx context.Context, x *exec) (outcome, error) {
	if err := x.st.call.Answer(ctx); err != nil {
		return outcome{}, err
	}
	x.trace("next", "")
	return x.next(), nil
}
