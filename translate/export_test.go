package translate

// ForgetMemo empties the memo of authorization policies (tests compare
// cold and warm translations).
func ForgetMemo() {
	authzMemo.mu.Lock()
	defer authzMemo.mu.Unlock()
	authzMemo.m = nil
}
