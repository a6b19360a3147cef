// EngramData
