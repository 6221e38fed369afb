using System.CommandLine;
using System.Text.Json;
using CoeffTune.Checkpoints;
using CoeffTune.Text;

namespace CoeffTune.Cli.Commands;

/// <summary><c>coefftune tokenize --model minilm TEXT...</c>: the ids and tokens a model sees for each text.</summary>
public static class TokenizeCommand
{
    public static Command Create()
    {
        var model = new Option<string>("--model") { Description = "model name (minilm, arctic-xs), a model file, or a folder with tokenizer files (tokenizer.json, vocab.txt, vocab.json + merges.txt)", DefaultValueFactory = _ => "minilm" };
        var json = new Option<bool>("--json") { Description = "print {\"texts\": [{\"text\", \"ids\", \"tokens\", \"length\", \"truncated\"}]}" };
        var input = new Option<FileInfo?>("--input") { Description = "read texts from a JSONL file, one object with a \"text\" field per line" };
        var maxTokens = new Option<int?>("--max-tokens") { Description = "cut texts to this many tokens, special tokens included (default: the tokenizer's model_max_length)" };
        var texts = new Argument<string[]>("texts") { Description = "texts to tokenize", Arity = ArgumentArity.ZeroOrMore };
        var cmd = new Command("tokenize", "Show the token ids and tokens a model's tokenizer gives each text") { model, json, input, maxTokens, texts };
        cmd.SetAction(p => Run(p.GetValue(model)!, p.GetValue(json), p.GetValue(input), p.GetValue(maxTokens), p.GetValue(texts) ?? Array.Empty<string>()));
        return cmd;
    }

    private static int Run(string modelName, bool asJson, FileInfo? input, int? maxTokens, string[] args)
    {
        if (maxTokens is <= 0) throw new ArgumentException($"--max-tokens must be positive, got {maxTokens}");
        var texts = args.ToList();
        if (input is not null) texts.AddRange(CoeffTune.Data.TextFileReader.ReadJsonlTexts(input.FullName));
        if (texts.Count == 0) throw new ArgumentException("no texts: give them as arguments or with --input FILE");
        using var tokenizer = PretrainedModels.LoadTokenizer(modelName, maxTokens, log: Console.Error);
        var encoded = texts.Select(tokenizer.Tokenize).ToArray();
        int cut = encoded.Count(e => e.Truncated);
        if (asJson)
        {
            var doc = new
            {
                model = modelName,
                tokenizer = tokenizer.Source,
                max_length = tokenizer.MaxLength,
                truncated = cut,
                texts = texts.Select((t, i) => new
                {
                    text = t, ids = encoded[i].Ids, tokens = encoded[i].Ids.Select(tokenizer.Token).ToArray(),
                    length = encoded[i].FullLength, truncated = encoded[i].Truncated,
                }),
            };
            Console.WriteLine(JsonSerializer.Serialize(doc, Cli.Json));
        }
        else
        {
            Console.WriteLine($"{modelName}: {tokenizer.Source}; at most {tokenizer.MaxLength} tokens");
            for (int i = 0; i < texts.Count; i++)
            {
                var e = encoded[i];
                var length = e.Truncated ? $"{e.Ids.Length} tokens, cut from {e.FullLength}" : $"{e.Ids.Length} tokens";
                Console.WriteLine($"[{i}] {length}: {TerminalText.Quote(texts[i])}");
                Console.WriteLine("  tokens: " + string.Join(" ", e.Ids.Select(id => TerminalText.Quote(tokenizer.Token(id)))));
                Console.WriteLine("  ids:    " + string.Join(" ", e.Ids));
            }
        }
        if (cut > 0) Console.Error.WriteLine($"note: {cut} of {texts.Count} text(s) were longer than {tokenizer.MaxLength} tokens and were cut");
        return 0;
    }
}
