using CoeffTune.Models;
using Microsoft.ML.Tokenizers;
using static TorchSharp.torch;

namespace CoeffTune.Text;

/// <summary>
/// WordPiece tokenisation for BERT-family encoders: texts become a padded <see cref="Batch"/> of
/// input_ids, attention_mask and token_type_ids (int64 [B, N], N the longest text, at most <see cref="MaxLength"/>).
/// </summary>
public sealed class BertTextTokenizer
{
    private readonly BertTokenizer tokenizer;

    /// <summary>Longest sequence kept, [CLS] and [SEP] included; longer texts are cut.</summary>
    public int MaxLength { get; }
    public bool LowerCase { get; }
    public int VocabSize { get; }

    public BertTextTokenizer(string vocabPath, int maxLength = 128, bool? lowerCase = null)
    {
        if (maxLength < 2) throw new ArgumentOutOfRangeException(nameof(maxLength), maxLength, "max length must leave room for [CLS] and [SEP]");
        if (!File.Exists(vocabPath)) throw new FileNotFoundException($"vocabulary {vocabPath} does not exist", vocabPath);
        var lines = File.ReadAllLines(vocabPath);
        VocabSize = lines.Length;
        // An uncased vocabulary has no capital letters outside its [SPECIAL] tokens, and needs lower-cased input.
        LowerCase = lowerCase ?? !lines.Any(l => !l.StartsWith('[') && l.Any(char.IsUpper));
        MaxLength = maxLength;
        tokenizer = BertTokenizer.Create(vocabPath, new BertOptions { LowerCaseBeforeTokenization = LowerCase });
    }

    /// <summary>Token ids of one text with [CLS] and [SEP], cut to <see cref="MaxLength"/>.</summary>
    public int[] Encode(string text)
    {
        var ids = tokenizer.EncodeToIds(text, addSpecialTokens: false);
        var body = ids.Take(MaxLength - 2);
        return body.Prepend(tokenizer.ClassificationTokenId).Append(tokenizer.SeparatorTokenId).ToArray();
    }

    /// <summary>A padded batch: ids padded with [PAD], mask 1 on real tokens, token types all 0 (one segment).</summary>
    public Batch EncodeBatch(IReadOnlyList<string> texts, Device? device = null)
    {
        if (texts.Count == 0) throw new ArgumentException("no texts to encode");
        var encoded = texts.Select(Encode).ToArray();
        int n = encoded.Max(e => e.Length);
        var ids = new long[texts.Count * n];
        var mask = new long[texts.Count * n];
        for (int b = 0; b < encoded.Length; b++)
            for (int i = 0; i < n; i++)
            {
                bool real = i < encoded[b].Length;
                ids[b * n + i] = real ? encoded[b][i] : tokenizer.PaddingTokenId;
                mask[b * n + i] = real ? 1 : 0;
            }
        long[] shape = { texts.Count, n };
        device ??= CPU;
        return new Batch(tensor(ids, shape).to(device), tensor(mask, shape).to(device), zeros(shape, ScalarType.Int64, device));
    }
}
