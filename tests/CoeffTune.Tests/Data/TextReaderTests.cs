using CoeffTune.Data;

namespace CoeffTune.Tests.Data;

public class TextReaderTests
{
    [Fact]
    public void Csv_keeps_quoted_commas_newlines_and_doubled_quotes_inside_a_field()
    {
        using var dir = new TempDir();
        var path = dir.File("train.csv",
            "id,text,label\r\n" +
            "1,\"hello, world\",pos\r\n" +
            "2,\"two\nlines and \"\"quotes\"\"\",neg\n" +
            "3,plain,pos\n");

        var data = TextFileReader.Read(path);

        Assert.Equal(3, data.Count);
        Assert.Equal(["hello, world", "two\nlines and \"quotes\"", "plain"], data.Texts);
        Assert.Equal(["neg", "pos"], data.Classes);
        Assert.Equal([1, 0, 1], data.Labels);
    }

    [Fact]
    public void Tsv_with_custom_column_names_and_integer_labels_orders_classes_numerically()
    {
        using var dir = new TempDir();
        var path = dir.File("reviews.tsv", "sentence\tstars\nbad\t10\nok\t2\nfine\t2\n");

        var data = TextFileReader.Read(path, textColumn: "sentence", labelColumn: "stars");

        Assert.Equal(["2", "10"], data.Classes);
        Assert.Equal([1, 0, 0], data.Labels);
        Assert.Equal("reviews", data.Name);
    }

    [Fact]
    public void Csv_with_a_missing_column_or_a_ragged_row_names_the_file()
    {
        using var dir = new TempDir();
        var noLabel = dir.File("a.csv", "text,category\nx,y\n");
        var ragged = dir.File("b.csv", "text,label\nx,1\n\"multi\nline\",1,extra\n");
        var unclosed = dir.File("c.csv", "text,label\n\"never closed,1\n");

        Assert.Equal("a.csv: no column \"label\" in the header (text, category)", Assert.Throws<InvalidDataException>(() => TextFileReader.Read(noLabel)).Message);
        Assert.Equal("b.csv: record starting on line 3 has 3 fields, the header has 2", Assert.Throws<InvalidDataException>(() => TextFileReader.Read(ragged)).Message);
        Assert.StartsWith("c.csv: a quoted field", Assert.Throws<InvalidDataException>(() => TextFileReader.Read(unclosed)).Message);
    }

    [Fact]
    public void Jsonl_reads_string_and_number_labels_and_skips_blank_lines()
    {
        using var dir = new TempDir();
        var path = dir.File("data.jsonl", "{\"text\":\"a \\\"b\\\"\",\"label\":1}\n\n{\"label\":0,\"text\":\"c\"}\n");

        var data = TextFileReader.Read(path);

        Assert.Equal(["a \"b\"", "c"], data.Texts);
        Assert.Equal(["0", "1"], data.Classes);
        Assert.Equal([1, 0], data.Labels);
    }

    [Fact]
    public void Jsonl_line_without_text_names_file_and_line()
    {
        using var dir = new TempDir();
        var path = dir.File("data.jsonl", "{\"text\":\"a\",\"label\":1}\n{\"body\":\"b\",\"label\":1}\n");

        var e = Assert.Throws<InvalidDataException>(() => TextFileReader.Read(path));

        Assert.Equal("data.jsonl: line 2 has no string field \"text\"", e.Message);
    }

    private const string SpamMail =
        "From someone@example.com  Thu Aug 22 13:17:22 2002\n" +
        "Return-Path: <someone@example.com>\n" +
        "Subject: Cheap   offer,\n" +
        "\tact now\n" +
        "Content-Type: text/html\n" +
        "\n" +
        "<html><head><style>p { color: red }</style></head><body><p>Buy&nbsp;now</p>\n\n\n" +
        "<b>Limited</b>   time</body></html>\n";

    [Fact]
    public void Spam_mail_text_is_subject_and_body_without_headers_tags_or_extra_space()
    {
        Assert.Equal("Cheap offer, act now Buy now Limited time", SpamAssassinReader.MailText(SpamMail));
        Assert.Equal("Cheap offe", SpamAssassinReader.MailText(SpamMail, maxChars: 10));
    }

    [Fact]
    public void Spam_folder_labels_ham_groups_0_and_spam_groups_1()
    {
        using var dir = new TempDir();
        foreach (var g in new[] { "easy-ham-1", "easy-ham-2", "hard-ham-1", "spam-1", "spam-2" })
        {
            dir.File($"data/{g}/00001.abc.txt", $"Subject: {g}\n\nbody of {g}\n");
            dir.File($"data/{g}/00001.abc.json", "{}");
        }
        dir.File("data/spam-2/00002.def.txt", "Subject: second\n\nmore\n");

        var data = SpamAssassinReader.Read(Path.Combine(dir.Path, "data"));

        Assert.Equal(6, data.Count);
        Assert.Equal(["ham", "spam"], data.Classes);
        Assert.Equal([0, 0, 0, 1, 1, 1], data.Labels);
        Assert.Equal("easy-ham-1 body of easy-ham-1", data.Texts[0]);
    }

    [Fact]
    public void Brown_passages_strip_tags_gather_whole_sentences_and_keep_the_document_id()
    {
        using var dir = new TempDir();
        dir.File("brown/cats.txt", "ca01 news\ncr01 humor\ncx99 unknown_genre\n");
        // 3 sentences of 4 words in ca01; passages of >= 6 words take two sentences; the last (4 words) is kept (>= 3).
        dir.File("brown/ca01", "\n\n\tThe/at jury/nn said/vbd ./.\n\n\t``/`` Yes/rb ''/'' ./.\n\n\tIt/pps rained/vbd 1/2/cd ./.\n");
        dir.File("brown/cr01", "\n\tA/at b/nn c/nn d/nn e/nn f/nn ./.\n");
        dir.File("brown/cx99", "\n\tx/nn\n");

        var data = BrownCorpusReader.Read(Path.Combine(dir.Path, "brown"), passageWords: 6);

        Assert.Equal(["The jury said . \" Yes \" .", "It rained 1/2 .", "A b c d e f ."], data.Texts);
        Assert.Equal(["ca01", "ca01", "cr01"], data.Groups!);
        Assert.Equal(["belles_lettres", "fiction", "learned", "popular", "press"], data.Classes);
        Assert.Equal([4, 4, 1], data.Labels);
    }

    [Fact]
    public void Brown_passage_remainder_shorter_than_half_a_passage_is_dropped()
    {
        var passages = BrownCorpusReader.Passages("\ta/x b/x c/x d/x\n\te/x\n", 4).ToList();
        Assert.Equal(["a b c d"], passages);
    }

    [Fact]
    public void Brown_document_listed_but_missing_is_named()
    {
        using var dir = new TempDir();
        dir.File("brown/cats.txt", "ca01 news\n");

        var e = Assert.Throws<FileNotFoundException>(() => BrownCorpusReader.Read(Path.Combine(dir.Path, "brown")));

        Assert.Contains("document ca01 listed in cats.txt not found", e.Message);
    }
}
