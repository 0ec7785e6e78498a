package stripefake

import (
	"encoding/json"
	"fmt"
	"net/http"
	"net/url"
	"slices"
	"strconv"
	"strings"
)

type action int

const (
	actionCapture action = iota + 1
	actionCancel
	actionRefund
	actionConfirm
)

// Statuses a PaymentIntent may be canceled from (Stripe's list).
var cancelable = []string{"requires_payment_method", "requires_capture", "requires_confirmation", "requires_action", "processing"}

// Stripe's enumerations for the reasons.
var (
	cancellationReasons = []string{"abandoned", "duplicate", "fraudulent", "requested_by_customer"}
	refundReasons       = []string{"duplicate", "fraudulent", "requested_by_customer"}
)

// intentAction serves capture, cancel, confirm and refund of PaymentIntent id: the
// next scripted fault for it, then the action under the Idempotency-Key.
func (s *Server) intentAction(w http.ResponseWriter, r *http.Request, form url.Values, key string, callIdx int, id string, act action) {
	s.mu.Lock()
	var f *Fault
	if sc := s.actions[id]; sc != nil {
		faults := map[action]*[]Fault{actionCapture: &sc.CaptureFaults, actionCancel: &sc.CancelFaults, actionRefund: &sc.RefundFaults,
			actionConfirm: &sc.ConfirmFaults}[act]
		if len(*faults) > 0 {
			f = &(*faults)[0]
			*faults = (*faults)[1:]
		}
	}
	s.mu.Unlock()
	s.idempotent(w, r, form, key, callIdx, f, func() (int, []byte) {
		switch act {
		case actionCapture:
			return s.capture(id, form)
		case actionCancel:
			return s.cancel(id, form)
		case actionConfirm:
			return s.confirm(id, form)
		}
		return s.refund(id, form, key)
	})
}

func noSuchIntent(id, param string) (int, []byte) {
	st := http.StatusNotFound
	if param != "intent" {
		// A missing object named in the body is a 400, not a 404.
		st = http.StatusBadRequest
	}
	return errBody(st, apiErr{Type: "invalid_request_error", Code: "resource_missing", Param: param,
		Message: fmt.Sprintf("No such payment_intent: '%s'", id)})
}

func unexpectedState(pi *Intent, msg string) (int, []byte) {
	return errBody(http.StatusBadRequest, apiErr{Type: "invalid_request_error", Code: "payment_intent_unexpected_state",
		Message: msg, PaymentIntent: intentJSON(pi)})
}

func badInteger(param, msg string) (int, []byte) {
	return errBody(http.StatusBadRequest, apiErr{Type: "invalid_request_error", Code: "parameter_invalid_integer", Param: param, Message: msg})
}

// capture runs POST /v1/payment_intents/{id}/capture; s.mu is held.
func (s *Server) capture(id string, form url.Values) (int, []byte) {
	pi, ok := s.intents[id]
	if !ok {
		return noSuchIntent(id, "intent")
	}
	if pi.Status != "requires_capture" {
		return unexpectedState(pi, fmt.Sprintf("This PaymentIntent could not be captured because it has a status of %s. "+
			"Only a PaymentIntent with one of the following statuses may be captured: requires_capture.", pi.Status))
	}
	amount := pi.AmountCapturable
	if v := form.Get("amount_to_capture"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil || n <= 0:
			return badInteger("amount_to_capture", "Invalid positive integer")
		case n > pi.AmountCapturable:
			return errBody(http.StatusBadRequest, apiErr{Type: "invalid_request_error", Param: "amount_to_capture",
				Message: fmt.Sprintf("The amount_to_capture (%d) must be less than or equal to the amount_capturable (%d).", n, pi.AmountCapturable)})
		}
		amount = n
	}
	pi.Status, pi.AmountCapturable, pi.AmountReceived = "succeeded", 0, amount
	return marshal(http.StatusOK, intentJSON(pi))
}

// cancel runs POST /v1/payment_intents/{id}/cancel; s.mu is held.
func (s *Server) cancel(id string, form url.Values) (int, []byte) {
	pi, ok := s.intents[id]
	if !ok {
		return noSuchIntent(id, "intent")
	}
	reason := form.Get("cancellation_reason")
	if reason != "" && !slices.Contains(cancellationReasons, reason) {
		return errBody(http.StatusBadRequest, apiErr{Type: "invalid_request_error", Param: "cancellation_reason",
			Message: "Invalid cancellation_reason: must be one of " + strings.Join(cancellationReasons, ", ")})
	}
	if !slices.Contains(cancelable, pi.Status) {
		return unexpectedState(pi, fmt.Sprintf("You cannot cancel this PaymentIntent because it has a status of %s. "+
			"Only a PaymentIntent with one of the following statuses may be canceled: %s.", pi.Status, strings.Join(cancelable, ", ")))
	}
	pi.setStatus("canceled")
	pi.CancellationReason = reason
	return marshal(http.StatusOK, intentJSON(pi))
}

// refund runs POST /v1/refunds for PaymentIntent id; s.mu is held.
func (s *Server) refund(id string, form url.Values, key string) (int, []byte) {
	if id == "" {
		return errBody(http.StatusBadRequest, apiErr{Type: "invalid_request_error", Code: "parameter_missing",
			Message: "One of the following params should be provided for this request: payment_intent or charge."})
	}
	pi, ok := s.intents[id]
	if !ok {
		return noSuchIntent(id, "payment_intent")
	}
	reason := form.Get("reason")
	if reason != "" && !slices.Contains(refundReasons, reason) {
		return errBody(http.StatusBadRequest, apiErr{Type: "invalid_request_error", Param: "reason",
			Message: "Invalid reason: must be one of " + strings.Join(refundReasons, ", ")})
	}
	switch pi.Status {
	case "succeeded":
	case "requires_capture":
		return unexpectedState(pi, "This PaymentIntent has not been captured: cancel it to release the authorization instead of refunding it.")
	default:
		return unexpectedState(pi, fmt.Sprintf("This PaymentIntent has a status of %s and no successful charge to refund.", pi.Status))
	}
	left := pi.AmountReceived - pi.AmountRefunded
	if left <= 0 {
		return errBody(http.StatusBadRequest, apiErr{Type: "invalid_request_error", Code: "charge_already_refunded",
			Message: fmt.Sprintf("Charge %s has already been refunded.", chargeID(pi))})
	}
	amount := left
	if v := form.Get("amount"); v != "" {
		n, err := strconv.ParseInt(v, 10, 64)
		switch {
		case err != nil || n <= 0:
			return badInteger("amount", "Invalid positive integer")
		case n > left:
			return errBody(http.StatusBadRequest, apiErr{Type: "invalid_request_error", Param: "amount",
				Message: fmt.Sprintf("Refund amount (%d %s) is greater than unrefunded amount on charge (%d %s)", n, pi.Currency, left, pi.Currency)})
		}
		amount = n
	}
	status := "succeeded"
	if sc := s.actions[id]; sc != nil && sc.RefundStatus != "" {
		status = sc.RefundStatus
	}
	s.nextRef++
	re := &Refund{ID: fmt.Sprintf("re_fake_%04d", s.nextRef), PaymentIntent: id, Amount: amount, Currency: pi.Currency,
		Status: status, Reason: reason, Metadata: metadata(form), IdempotencyKey: key}
	s.refunds = append(s.refunds, re)
	if status != "failed" && status != "canceled" {
		// Pending refunds count too: Stripe will not refund the money twice.
		pi.AmountRefunded += amount
	}
	return marshal(http.StatusOK, refundJSON(re, pi))
}

func refundJSON(re *Refund, pi *Intent) map[string]any {
	m := map[string]any{
		"id": re.ID, "object": "refund", "amount": re.Amount, "currency": re.Currency, "status": re.Status,
		"reason": nilIf(re.Reason == "", re.Reason), "payment_intent": re.PaymentIntent, "charge": chargeID(pi),
		"metadata": re.Metadata, "created": 1700000100,
	}
	if re.Status == "failed" {
		m["failure_reason"] = "expired_or_canceled_card"
	}
	return m
}

// chargeID is the id of the PaymentIntent's (only) charge.
func chargeID(pi *Intent) string { return "ch_" + strings.TrimPrefix(pi.ID, "pi_") }

// metadata collects the form's metadata[k] = v.
func metadata(form url.Values) map[string]string {
	m := map[string]string{}
	for k, v := range form {
		if mk, ok := strings.CutPrefix(k, "metadata["); ok && strings.HasSuffix(mk, "]") && len(v) > 0 {
			m[strings.TrimSuffix(mk, "]")] = v[0]
		}
	}
	return m
}

func marshal(status int, v any) (int, []byte) {
	b, _ := json.Marshal(v)
	return status, b
}
