"""Services: each use case opens its transaction and calls domain rules and store functions."""
