set edit:completion:arg-completer[berth] = { |@words|
    var index = (count $words)
    set index = (- $index 1)

    put (env _CLAP_IFS="\n" _CLAP_COMPLETE_INDEX=(to-string $index) _BERTH_COMPLETE="elvish" berth -- $@words) | to-lines
}
