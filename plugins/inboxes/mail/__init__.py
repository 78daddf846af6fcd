"""Reading and writing messages: parsing, charsets, HTML, threading keys, automation rules, bounces."""
