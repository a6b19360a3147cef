// EngramNN
